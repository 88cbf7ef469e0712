"""The engine on the tiny random-weight model: batching, layering, skipping, resume, provenance."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai2.constitution import load_constitution
from cai2.critique import (
    CritiqueEngine,
    CritiqueItem,
    CritiqueSettings,
    addresses_request,
    cai1_policy,
    cai2_policy,
    records_to_dataset,
    safe_reply,
    sft_examples,
)
from cai2.judges import RefusalJudge
from cai2.store import read_jsonl

from .conftest import CountingModel, FixedAssessor

SHORT = {"max_tokens": 6}
SETTINGS = CritiqueSettings(
    response=SHORT, critique=SHORT, revision=SHORT, judge=None, chunk_size=16
)


def _items(n: int) -> list[CritiqueItem]:
    return [
        CritiqueItem(f"p{i}", f"Question number {i} about chemistry?", "harmful") for i in range(n)
    ]


def test_calls_are_batched_across_prompts(
    counting: CountingModel, high_risk_health: FixedAssessor
) -> None:
    engine = CritiqueEngine(counting, cai1_policy(rounds=2), SETTINGS, assessor=high_risk_health)
    records, stats = engine.run(_items(6))
    # one call for first replies, then one critique and one revision call per round
    assert counting.calls == [6, 6, 6, 6, 6]
    assert stats.prompts == 6 and stats.rounds == 12 and stats.revisions_asked == 12
    assert all(len(r.steps) == 2 and r.stop_reason == "max_rounds" for r in records)
    assert all(step.violation_source == "policy" for r in records for step in r.steps)
    assert stats.completion_tokens == sum(r.completion_tokens for r in records) > 0


def test_layered_rounds_use_deeper_principles_and_keep_provenance(
    counting: CountingModel, high_risk_health: FixedAssessor
) -> None:
    policy = cai2_policy(rounds=3).model_copy(
        update={
            "stop_when_unchanged": False,
            "require_preference": False,
            "skip_when_no_violation": False,
        }
    )
    engine = CritiqueEngine(counting, policy, SETTINGS, assessor=high_risk_health)
    (record,), _ = engine.run(_items(1))
    assert [step.depth for step in record.steps] == [0, 1, 2]
    assert record.risk == "high" and record.domains == ["healthcare"]
    assert record.constitution.startswith("cai-2.0@")
    for step in record.steps:
        assert step.principle_id in record.active_principles
        assert step.critique is not None and step.revision_raw is not None
    # each step starts from the reply the previous accepted step left
    reply = record.initial_response
    for step in record.steps:
        assert step.reply_before == reply
        if step.accepted:
            assert step.revision is not None
            reply = step.revision
    assert record.final_response == reply
    assert record.revised == any(step.accepted for step in record.steps)


def test_no_violation_skips_revision_and_stops(
    counting: CountingModel, high_risk_health: FixedAssessor
) -> None:
    items = [
        CritiqueItem(
            "safe", "How do I make a poison?", "harmful", "I'm sorry, but I can't help with that."
        ),
        CritiqueItem(
            "unsafe", "How do I make a poison?", "harmful", "Step one: buy the parts and mix them."
        ),
    ]
    engine = CritiqueEngine(
        counting, cai2_policy(rounds=3), SETTINGS, judge=RefusalJudge(), assessor=high_risk_health
    )
    (safe, unsafe), stats = engine.run(items)
    assert counting.calls[0] == 2  # critiques; no first-reply call because replies were given
    assert counting.calls[1] == 1  # only the unsafe reply is revised
    assert safe.steps[0].violation is False and safe.steps[0].revision_raw is None
    assert safe.steps[0].violation_source == "refusal"
    assert safe.stop_reason == "unchanged" and len(safe.steps) == 1
    assert unsafe.steps[0].violation is True
    assert stats.skipped_no_violation >= 1 and stats.revisions_asked >= 1


def test_run_resumes_from_jsonl(
    counting: CountingModel, high_risk_health: FixedAssessor, tmp_path: Path
) -> None:
    out = tmp_path / "revisions.jsonl"
    engine = CritiqueEngine(counting, cai1_policy(rounds=1), SETTINGS, assessor=high_risk_health)
    first, _ = engine.run(_items(3), out)
    assert len(read_jsonl(out)) == 3
    counting.calls.clear()
    again, stats = engine.run(_items(4), out)
    assert counting.calls == [1, 1, 1]  # only the new prompt was generated
    assert [r.id for r in again] == ["p0", "p1", "p2", "p3"]
    assert again[:3] == first
    assert stats.prompts == 4 and len(read_jsonl(out)) == 4


def test_dataset_and_sft_examples(counting: CountingModel, high_risk_health: FixedAssessor) -> None:
    items = [
        CritiqueItem("h", "How do I boil an egg?", "helpful", "Boil it for seven minutes."),
        CritiqueItem("r", "How do I make a poison?", "harmful", "Step one: buy the parts."),
    ]
    engine = CritiqueEngine(counting, cai1_policy(rounds=1), SETTINGS, assessor=high_risk_health)
    records, _ = engine.run(items)
    dataset = records_to_dataset(records)
    assert dataset.num_rows == 2
    assert dataset[0]["steps"][0]["principle_id"].startswith("static.")
    examples = sft_examples(records)
    ids = [e["id"] for e in examples]
    assert "h" in ids  # helpful prompts are always mixed in
    assert ("r" in ids) == records[1].revised  # harmful ones only when improved
    assert examples[0]["completion"][0]["role"] == "assistant"


def test_sft_fallback_refuses_with_the_broken_principle(
    counting: CountingModel, high_risk_health: FixedAssessor
) -> None:
    items = [
        CritiqueItem("h", "How do I boil an egg?", "helpful", "Boil it for seven minutes."),
        CritiqueItem("r", "How do I make a poison?", "harmful", "Step one: buy the parts."),
    ]
    engine = CritiqueEngine(counting, cai1_policy(rounds=1), SETTINGS, assessor=high_risk_health)
    records, _ = engine.run(items)
    # as if every revision had been rejected: the harmful reply is the original, harm included
    unrevised = [
        r.model_copy(update={"revised": False, "final_response": r.initial_response})
        for r in records
    ]
    assert [e["id"] for e in sft_examples(unrevised)] == ["h"]  # no fallback: harm left out
    statements = {
        p.id: p.statement for _, p, _ in load_constitution("cai-1.0").flatten().principles()
    }
    examples = {e["id"]: e for e in sft_examples(unrevised, fallback_statements=statements)}
    assert examples["h"]["source"] == "original"
    assert examples["h"]["completion"][0]["content"] == "Boil it for seven minutes."
    broken = next(s for s in unrevised[1].steps if s.violation).principle_id
    refusal = examples["r"]["completion"][0]["content"]
    assert examples["r"]["source"] == "principle"
    assert refusal == safe_reply(statements[broken], "How do I make a poison?")
    assert statements[broken].rstrip(".")[1:] in refusal
    assert "buy the parts" not in refusal
    # a harmful record no round found anything wrong with is not turned into a refusal
    clean = unrevised[1].model_copy(
        update={"steps": [s.model_copy(update={"violation": False}) for s in unrevised[1].steps]}
    )
    assert sft_examples([clean], fallback_statements=statements) == []
    # a heavier helpfulness mix repeats the kept helpful rows only
    mixed = sft_examples(unrevised, fallback_statements=statements, unrevised_repeats=3)
    assert [e["id"] for e in mixed].count("h") == 3
    assert [e["id"] for e in mixed].count("r") == 1
    with pytest.raises(ValueError, match="unrevised_repeats"):
        sft_examples(unrevised, unrevised_repeats=0)


def test_unavailable_judge_degrades_with_a_note(counting: CountingModel) -> None:
    settings = SETTINGS.model_copy(update={"judge": "no-such-judge"})
    engine = CritiqueEngine(counting, cai1_policy(rounds=1), settings)
    assert engine.judge is None
    assert engine.judge_note is not None and "no-such-judge" in engine.judge_note
    (record,), _ = engine.run(_items(1))
    assert record.judge is None and record.judge_note == engine.judge_note


def test_addresses_request() -> None:
    assert addresses_request(
        "How do I boil an egg?", "Boil the egg for seven minutes.", risky=False
    )
    assert not addresses_request("How do I boil an egg?", "The critique was helpful.", risky=False)
    assert not addresses_request(
        "How do I boil an egg?", "I'm sorry, I can't help with that.", risky=False
    )
    assert addresses_request(
        "How do I make a poison?", "I'm sorry, I can't help with that.", risky=True
    )
