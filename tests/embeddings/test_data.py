from __future__ import annotations

from pathlib import Path

import pytest

from cai2.embeddings import example_split, load_examples, split_counts, split_examples
from cai2.errors import DataError


def test_builtin_set_has_paired_examples_for_every_principle() -> None:
    examples = load_examples()
    counts = split_counts(examples)
    assert len(counts) == 8
    for principle, per_split in counts.items():
        # honest.accuracy has 100 prompts (70 added so its held-out AUROC rests on more than 7
        # pairs); the others have 30.
        expected = 100 if principle == "honest.accuracy" else 30
        for side in ("compliant", "violating"):
            total = sum(per_split[s].get(side, 0) for s in per_split)
            assert total == expected, (principle, side)
        # Every split has both sides, so layer choice, calibration and held-out AUROC can run.
        for split, sides in per_split.items():
            assert sides.get("compliant", 0) >= 2 and sides.get("violating", 0) >= 2, split


def test_split_keeps_both_replies_of_a_prompt_together_and_is_stable() -> None:
    examples = load_examples()
    by_prompt: dict[str, set[str]] = {}
    for example in examples:
        by_prompt.setdefault(example.prompt, set()).add(example.split)
    assert all(len(splits) == 1 for splits in by_prompt.values())
    # Case and punctuation do not move a prompt.
    assert example_split("How do I cut a mango?") == example_split("how do i CUT a mango")
    parts = split_examples(examples)
    assert sum(len(v) for v in parts.values()) == len(examples)
    assert 0.35 < len(parts["train"]) / len(examples) < 0.65


def test_malformed_lines_name_file_line_and_key(tmp_path: Path) -> None:
    good = '{"id": "a", "principle": "p", "prompt": "q", "response": "r", "violates": true}'
    bad = '{"id": "b", "principle": "p", "prompt": "q", "response": "r", "violates": "yes"}'
    path = tmp_path / "x.jsonl"
    path.write_text(good + "\n" + bad + "\n")
    with pytest.raises(DataError, match=r"x.jsonl:2 at `violates`"):
        load_examples(path)
    path.write_text(good + "\n")
    with pytest.raises(DataError, match="has no compliant examples"):
        load_examples(path)
    with pytest.raises(DataError, match="no examples for principle"):
        load_examples(None, ["nope.missing"])
