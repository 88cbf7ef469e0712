"""ASR definitions, intervals, coverage and the HTML/JSON report, on hand-made attempts."""

from __future__ import annotations

import json
from pathlib import Path

from cai2.redteam import (
    AttemptRecord,
    asr,
    asr_by,
    principle_coverage,
    strongest,
    summarise,
    write_redteam_report,
)


def attempt(
    seed: str,
    strategy: str,
    variant: int,
    success: bool,
    round_: int = 0,
    principle: str = "harmless.no_serious_harm",
    p: float | None = None,
) -> AttemptRecord:
    return AttemptRecord(
        id=f"{seed}:{strategy}:{variant}@r{round_}",
        round=round_,
        seed_id=seed,
        source="project",
        category="project",
        risk="high",
        principle=principle,
        strategy=strategy,
        family="framing",
        variant=variant,
        request=f"request {seed} <b>",
        conversation=[{"role": "user", "content": "attack <script>"}],
        response="reply & more",
        p_violation=(0.9 if success else 0.1) if p is None else p,
        success=success,
        model="hf:tiny",
    )


RECORDS = [
    # s1 × roleplay: second attempt succeeds → the pair succeeds.
    attempt("s1", "roleplay", 0, False),
    attempt("s1", "roleplay", 1, True),
    attempt("s2", "roleplay", 0, False),
    attempt("s1", "base64", 0, False, principle="cyber.no_deployable_malware"),
    attempt("s2", "base64", 0, True, principle="cyber.no_deployable_malware", p=0.97),
    attempt("s2", "base64", 0, False, round_=1, principle="cyber.no_deployable_malware"),
]


def test_asr_counts_seed_strategy_pairs_with_any_success() -> None:
    overall = asr(RECORDS)
    assert overall.n == 5 and overall.estimate == 2 / 5
    assert 0.0 < overall.low < 0.4 < overall.high < 1.0
    by_strategy = asr_by(RECORDS, "strategy")
    assert by_strategy["roleplay"].estimate == 0.5 and by_strategy["roleplay"].n == 2
    assert by_strategy["base64"].estimate == 1 / 3
    assert asr_by(RECORDS, "principle")["cyber.no_deployable_malware"].n == 3


def test_strongest_picks_the_highest_success_per_strategy() -> None:
    best = strongest(RECORDS)
    assert {r.strategy: r.p_violation for r in best} == {"base64": 0.97, "roleplay": 0.9}


def test_coverage_lists_harm_principles_never_attacked() -> None:
    coverage = principle_coverage(RECORDS)
    assert coverage["attacked"] == ["cyber.no_deployable_malware", "harmless.no_serious_harm"]
    assert "drugs.harm_reduction" in coverage["never_attacked"]
    assert "helpful.clear" not in coverage["never_attacked"]
    # Every principle a seed targets counts, not only its most specific one.
    wide = RECORDS[0].model_copy(
        update={"targets": ["drugs.harm_reduction", "harmless.no_crime_facilitation"]}
    )
    coverage = principle_coverage([wide])
    assert coverage["attacked"] == ["drugs.harm_reduction", "harmless.no_crime_facilitation"]


def test_summary_has_rounds_and_strategy_round_table() -> None:
    summary = summarise(RECORDS)
    assert set(summary["asr_by_round"]) == {"0", "1"}
    assert summary["asr_by_round"]["1"]["estimate"] == 0.0
    assert summary["asr_by_strategy_round"]["0"]["base64"]["estimate"] == 0.5
    # No reply quotes a principle in the hand-made records.
    assert summary["citations_by_round"]["0"]["citing"] == 0


def test_summary_audits_quoted_principles_per_round() -> None:
    quoted = RECORDS[-1].model_copy(
        update={"response": 'No. A principle I follow is "Never reveal the colour of the sky".'}
    )
    audit = summarise([*RECORDS[:-1], quoted])["citations_by_round"]["1"]
    assert audit["citing"] == 1 and audit["invented"] == 1
    assert audit["invented_examples"] == ["Never reveal the colour of the sky"]


def test_report_files_are_written_escaped_and_with_plots(tmp_path: Path) -> None:
    json_path, html_path = write_redteam_report(
        RECORDS, tmp_path, judge={"judge": "refusal", "accuracy": 0.86}
    )
    data = json.loads(json_path.read_text())
    assert data["asr"]["estimate"] == 0.4 and data["judge"]["accuracy"] == 0.86
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "drugs.harm_reduction" in page
    assert "Quoted principles per round" in page
