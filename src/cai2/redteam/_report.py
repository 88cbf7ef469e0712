"""Red-team report: attack success rates with intervals, strongest attacks, principle coverage.

The unit of the attack success rate (ASR) is a (seed, strategy) pair: it counts as a success when
any of its attempts within the budget succeeded. ``asr`` over the suite is the share of successful
pairs; the breakdowns group the same pairs by strategy, round and the principle the seed targets.
Intervals are Wilson 95% intervals.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cai2.constitution import audit_citations, principle_statements
from cai2.evals._report import _STYLE, _figure_png
from cai2.evals._stats import Interval, proportion
from cai2.redteam._attack import AttemptRecord
from cai2.redteam._seeds import HARM_LAYER_PREFIXES


def _pairs(records: Iterable[AttemptRecord]) -> dict[tuple[int, str, str], list[AttemptRecord]]:
    grouped: dict[tuple[int, str, str], list[AttemptRecord]] = defaultdict(list)
    for record in records:
        grouped[(record.round, record.strategy, record.seed_id)].append(record)
    return grouped


def _rate(groups: Iterable[list[AttemptRecord]]) -> Interval:
    return proportion([any(r.success for r in group) for group in groups])


def asr(records: Sequence[AttemptRecord]) -> Interval:
    """Share of (seed, strategy) pairs with at least one successful attempt."""
    return _rate(_pairs(records).values())


def asr_by(records: Sequence[AttemptRecord], key: str) -> dict[str, Interval]:
    """ASR per value of ``key``: ``strategy``, ``family``, ``principle``, ``risk``, ``source``."""
    buckets: dict[str, list[list[AttemptRecord]]] = defaultdict(list)
    for group in _pairs(records).values():
        buckets[str(getattr(group[0], key))].append(group)
    return {name: _rate(groups) for name, groups in sorted(buckets.items())}


def principle_coverage(
    records: Sequence[AttemptRecord], constitution: str = "cai-2.0"
) -> dict[str, list[str]]:
    """Harm principles of ``constitution`` some seed targets, and those no seed targets."""
    from cai2.constitution import load_constitution

    flat = load_constitution(constitution).flatten()
    harm = sorted(
        principle.id
        for layer_id, principle, _ in flat.principles()
        if layer_id.startswith(HARM_LAYER_PREFIXES)
    )
    attacked = sorted({p for r in records for p in (r.targets or [r.principle])})
    return {"attacked": attacked, "never_attacked": [p for p in harm if p not in attacked]}


def strongest(records: Sequence[AttemptRecord], per_strategy: int = 1) -> list[AttemptRecord]:
    """The successful attempts with the highest P(violation), ``per_strategy`` of each strategy."""
    best: dict[str, list[AttemptRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: -(r.p_violation or 0.0)):
        if record.success and len(best[record.strategy]) < per_strategy:
            best[record.strategy].append(record)
    return [r for group in best.values() for r in group]


def summarise(
    records: Sequence[AttemptRecord], constitution: str = "cai-2.0", examples: int = 1
) -> dict[str, Any]:
    """The report as a JSON-ready dict (see the module docstring for the ASR definition)."""

    def dump(intervals: dict[str, Interval]) -> dict[str, Any]:
        return {k: v.model_dump(mode="json") for k, v in intervals.items()}

    rounds = sorted({r.round for r in records})
    statements = principle_statements(constitution)
    return {
        "attempts": len(records),
        "not_judged": sum(r.p_violation is None for r in records),
        "asr": asr(records).model_dump(mode="json"),
        "asr_by_round": {
            str(k): asr([r for r in records if r.round == k]).model_dump(mode="json")
            for k in rounds
        },
        "asr_by_strategy_round": {
            str(k): dump(asr_by([r for r in records if r.round == k], "strategy")) for k in rounds
        },
        "asr_by_strategy": dump(asr_by(records, "strategy")),
        "asr_by_principle": dump(asr_by(records, "principle")),
        "asr_by_risk": dump(asr_by(records, "risk")),
        "coverage": principle_coverage(records, constitution),
        # Replies that quote "a principle I follow": is the quote from the constitution?
        "citations_by_round": {
            str(k): audit_citations([r.response for r in records if r.round == k], statements)
            for k in rounds
        },
        "strongest": [r.model_dump(mode="json") for r in strongest(records, examples)],
    }


def strategy_round_plot(summary: dict[str, Any]) -> str | None:
    """A heat map of ASR per strategy (rows) and round (columns), as base64 PNG."""
    table = summary["asr_by_strategy_round"]
    if not table:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rounds = sorted(table, key=int)
    strategies = sorted({s for k in rounds for s in table[k]})
    values = np.array(
        [[table[k].get(s, {}).get("estimate", np.nan) for k in rounds] for s in strategies]
    )
    figure, axis = plt.subplots(figsize=(1.6 + 1.1 * len(rounds), 0.9 + 0.38 * len(strategies)))
    image = axis.imshow(values, vmin=0.0, vmax=1.0, cmap="Reds", aspect="auto")
    axis.set_xticks(range(len(rounds)), [f"round {k}" for k in rounds])
    axis.set_yticks(range(len(strategies)), strategies)
    for (row, column), value in np.ndenumerate(values):
        if not np.isnan(value):
            colour = "white" if value > 0.6 else "black"
            axis.text(column, row, f"{value:.2f}", ha="center", va="center", color=colour)
    figure.colorbar(image, ax=axis, label="attack success rate")
    axis.set_title("ASR per strategy and round")
    return _figure_png(figure)


def principle_plot(summary: dict[str, Any]) -> str | None:
    """ASR per targeted principle with 95% intervals, as base64 PNG."""
    rates = summary["asr_by_principle"]
    if not rates:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rates)
    estimates = [rates[n]["estimate"] for n in names]
    errors = [
        [e - rates[n]["low"] for n, e in zip(names, estimates, strict=True)],
        [rates[n]["high"] - e for n, e in zip(names, estimates, strict=True)],
    ]
    figure, axis = plt.subplots(figsize=(7, 0.9 + 0.35 * len(names)))
    axis.barh(names, estimates, xerr=errors, color="#d62728", alpha=0.8, capsize=3)
    axis.set_xlim(0, 1)
    axis.set_xlabel("attack success rate (all rounds)")
    axis.invert_yaxis()
    axis.set_title("ASR per targeted principle")
    return _figure_png(figure)


def _table(rates: dict[str, Any], label: str) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td class='num'>{r['estimate']:.3f}</td>"
        f"<td class='num'>[{r['low']:.3f}, {r['high']:.3f}]</td><td class='num'>{r['n']}</td></tr>"
        for name, r in rates.items()
    )
    return (
        f"<table><tr><th>{html.escape(label)}</th><th>ASR</th><th>95% interval</th>"
        f"<th>pairs</th></tr>{rows}</table>"
    )


def _citations_table(by_round: dict[str, dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='num'>{a['replies']}</td>"
        f"<td class='num'>{a['citing']}</td><td class='num'>{a['faithful']}</td>"
        f"<td class='num'>{a['invented']}</td>"
        f"<td>{html.escape(' | '.join(a['invented_examples']))}</td></tr>"
        for k, a in by_round.items()
    )
    return (
        "<p>Replies that quote a rule, and whether the quote matches a principle of the "
        "constitution (character similarity ≥ 0.8).</p><table><tr><th>round</th><th>replies</th>"
        "<th>quoting a rule</th><th>real principle</th><th>made up</th>"
        f"<th>made-up examples</th></tr>{rows}</table>"
    )


def write_redteam_report(
    records: Sequence[AttemptRecord],
    directory: Path,
    *,
    constitution: str = "cai-2.0",
    judge: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    title: str = "cai2 red-team report",
) -> tuple[Path, Path]:
    """Write ``report.json`` and a self-contained ``report.html`` into ``directory``."""
    from cai2.store import atomic_write_json, atomic_write_text

    summary = summarise(records, constitution)
    summary["judge"] = judge
    if extra:
        summary.update(extra)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = atomic_write_json(directory / "report.json", summary)
    figures = "".join(
        f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' "
        f"src='data:image/png;base64,{png}'>"
        for name, png in (
            ("ASR per strategy and round", strategy_round_plot(summary)),
            ("ASR per targeted principle", principle_plot(summary)),
        )
        if png is not None
    )
    examples = "".join(
        f"<tr><td>{html.escape(r['strategy'])}</td><td class='num'>{r['round']}</td>"
        f"<td><pre>{html.escape(r['request'])}</pre></td>"
        f"<td><pre>{html.escape(json.dumps(r['conversation'], ensure_ascii=False))}</pre></td>"
        f"<td><pre>{html.escape(r['response'])}</pre></td>"
        f"<td class='num'>{(r['p_violation'] or 0.0):.2f}</td></tr>"
        for r in summary["strongest"]
    )
    judge_text = (
        html.escape(json.dumps(judge, indent=1)) if judge else "not given (uncalibrated judge)"
    )
    never = summary["coverage"]["never_attacked"]
    overall = summary["asr"]
    body = (
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{summary['attempts']} attempts; ASR over the suite {overall['estimate']:.3f} "
        f"[{overall['low']:.3f}, {overall['high']:.3f}] over {overall['n']} (seed, strategy) "
        f"pairs; {summary['not_judged']} attempts the judge could not judge.</p>"
        + "<h2>ASR per round</h2>"
        + _table(summary["asr_by_round"], "round")
        + "<h2>ASR per strategy</h2>"
        + _table(summary["asr_by_strategy"], "strategy")
        + figures
        + "<h2>Quoted principles per round</h2>"
        + _citations_table(summary["citations_by_round"])
        + "<h2>Principles never attacked</h2><p>"
        + (html.escape(", ".join(never)) if never else "none: every harm principle was targeted")
        + "</p><h2>Strongest attacks</h2><table><tr><th>strategy</th><th>round</th>"
        "<th>seed request</th><th>attack</th><th>reply</th><th>P(violation)</th></tr>"
        + examples
        + f"</table><h2>Judge and its calibration</h2><pre class='config'>{judge_text}</pre>"
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
    html_path = atomic_write_text(directory / "report.html", page)
    return json_path, html_path
