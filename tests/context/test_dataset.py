"""The labelled prompt set and its loader."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cai2.constitution import KNOWN_DOMAINS
from cai2.context import (
    LabelledPrompt,
    RiskTier,
    as_conversation,
    load_context_dataset,
    user_text,
)
from cai2.errors import DataError

GOOD = {
    "id": "x-1",
    "prompt": "How do I boil an egg?",
    "risk": "low",
    "domains": ["general"],
    "complexity": 0.1,
    "split": "train",
}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_builtin_set_is_large_balanced_and_honestly_split(dataset: list[LabelledPrompt]) -> None:
    assert len(dataset) >= 600
    by_split = Counter((r.split, r.risk) for r in dataset)
    for tier in RiskTier:
        assert by_split[("train", tier)] >= 50
        assert by_split[("test", tier)] >= 20
    test_share = sum(r.split == "test" for r in dataset) / len(dataset)
    # The sixth round's fresh test split is 186 of 2843 prompts (with 500 new training prompts).
    assert 0.06 <= test_share <= 0.32
    # Near-duplicate siblings share a group; a group never straddles the split.
    splits_of_group: dict[str, set[str]] = defaultdict(set)
    for record in dataset:
        splits_of_group[record.group or record.id].add(record.split)
    assert all(len(splits) == 1 for splits in splits_of_group.values())
    texts = [user_text(r.conversation).lower() for r in dataset]
    assert len(set(texts)) == len(texts)


def test_second_labels_cover_the_current_test_split(dataset: list[LabelledPrompt]) -> None:
    # bench/context_agreement.py compares two blind labellers with the test labels; a new test
    # split needs new second labels, or the agreement numbers describe prompts no longer tested.
    path = Path(__file__).parents[2] / "bench" / "data" / "context_second_labels.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    test_ids = {r.id for r in dataset if r.split == "test"}
    by_labeller: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        assert row["risk"] in {tier.value for tier in RiskTier}
        by_labeller[row["labeller"]].append(row["id"])
    assert sorted(by_labeller) == ["a", "b"]
    for ids in by_labeller.values():
        assert sorted(ids) == sorted(test_ids)


def test_builtin_set_covers_every_domain_multi_turn_and_alarming_benign(
    dataset: list[LabelledPrompt],
) -> None:
    domains = Counter(d for r in dataset for d in r.domains)
    assert set(domains) == set(KNOWN_DOMAINS)
    assert min(domains.values()) >= 15
    multi_turn = [r for r in dataset if r.messages is not None]
    assert len(multi_turn) >= 30
    assert {r.risk for r in multi_turn} == set(RiskTier)
    alarming_low = [
        r
        for r in dataset
        if r.risk is RiskTier.low and any(w in (r.prompt or "").lower() for w in ("kill", "bomb"))
    ]
    assert len(alarming_low) >= 5


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "set.jsonl", [json.dumps(GOOD), "{not json"])
    with pytest.raises(DataError, match=r"set\.jsonl:2: malformed JSON"):
        load_context_dataset(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"risk": "extreme"}, r":1 at `risk`"),
        ({"domains": ["astrology"]}, r"unknown domain"),
        ({"split": "dev"}, r":1 at `split`"),
        ({"complexity": 1.5}, r":1 at `complexity`"),
        ({"colour": "red"}, r":1 at `colour`: unknown key"),
        (
            {"messages": [{"role": "user", "content": "hi"}]},
            r"exactly one of `prompt` or `messages`",
        ),
    ],
)
def test_invalid_record_names_line_and_key(tmp_path: Path, change: dict, message: str) -> None:
    path = write_lines(tmp_path / "set.jsonl", [json.dumps({**GOOD, **change})])
    with pytest.raises(DataError, match=message):
        load_context_dataset(path)


def test_duplicate_id_and_missing_file(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "set.jsonl", [json.dumps(GOOD), "", json.dumps(GOOD)])
    with pytest.raises(DataError, match=r":3: duplicate id `x-1` \(first on line 1\)"):
        load_context_dataset(path)
    with pytest.raises(DataError, match="not found"):
        load_context_dataset(tmp_path / "absent.jsonl")


def test_multi_turn_must_end_with_user(tmp_path: Path) -> None:
    record = {k: v for k, v in GOOD.items() if k != "prompt"}
    record["messages"] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    path = write_lines(tmp_path / "set.jsonl", [json.dumps(record)])
    with pytest.raises(DataError, match="end with a user turn"):
        load_context_dataset(path)


text_st = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60
).filter(lambda s: s.strip() != "")
record_st = st.fixed_dictionaries(
    {
        "prompt": text_st,
        "risk": st.sampled_from([t.value for t in RiskTier]),
        "domains": st.lists(st.sampled_from(KNOWN_DOMAINS), min_size=1, max_size=3, unique=True),
        "complexity": st.floats(0, 1),
        "split": st.sampled_from(["train", "test"]),
    }
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(record_st, min_size=1, max_size=8))
def test_valid_records_round_trip(tmp_path: Path, records: list[dict]) -> None:
    lines = [json.dumps({"id": f"r{i}", **r}) for i, r in enumerate(records)]
    loaded = load_context_dataset(write_lines(tmp_path / "set.jsonl", lines))
    assert [r.prompt for r in loaded] == [r["prompt"] for r in records]
    assert [r.risk.value for r in loaded] == [r["risk"] for r in records]
    assert [r.conversation[-1]["content"] for r in loaded] == [r["prompt"] for r in records]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    good=st.integers(0, 5),
    junk=st.text(max_size=30).filter(lambda s: s.strip() and "\n" not in s and "\r" not in s),
)
def test_first_bad_line_is_reported(tmp_path: Path, good: int, junk: str) -> None:
    lines = [json.dumps({**GOOD, "id": f"r{i}"}) for i in range(good)] + [junk]
    path = write_lines(tmp_path / "set.jsonl", lines)
    # Malformed JSON and well-formed JSON that is not a valid record are both reported at the line.
    with pytest.raises(DataError) as info:
        load_context_dataset(path)
    assert f"set.jsonl:{good + 1}" in str(info.value)


def test_as_conversation_accepts_prompts_and_turns_and_rejects_bad_input() -> None:
    assert as_conversation("hi") == [{"role": "user", "content": "hi"}]
    turns = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert as_conversation(turns) == turns
    with pytest.raises(DataError, match="empty"):
        as_conversation("   ")
    with pytest.raises(DataError, match="turn 0 at `role`: unknown role `robot`"):
        as_conversation([{"role": "robot", "content": "x"}])
    with pytest.raises(DataError, match="no non-empty user turn"):
        as_conversation([{"role": "assistant", "content": "x"}])
    with pytest.raises(DataError, match="`role` and `content`"):
        as_conversation([{"text": "x"}])


def test_user_text_keeps_the_latest_turns() -> None:
    conversation = as_conversation(
        [
            {"role": "user", "content": "first " * 100},
            {"role": "assistant", "content": "ignored"},
            {"role": "user", "content": "LAST"},
        ]
    )
    text = user_text(conversation, max_chars=50)
    assert text.endswith("LAST") and "ignored" not in text and len(text) == 50
