"""The project's benign prompts and the harmful prompts read from installed packages."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cai2.errors import ConfigError, DataError
from cai2.evals import EvalItem, load_benign_items, load_harmful_items, sample_items


def test_benign_set_is_large_and_well_formed() -> None:
    items = load_benign_items()
    assert len(items) >= 100
    kinds = Counter(i.kind for i in items)
    assert kinds["alarming"] >= 50 and kinds["benign"] >= 40
    assert len({i.id for i in items}) == len(items)
    assert len({i.prompt for i in items}) == len(items)
    assert all(i.side == "benign" for i in items)
    assert sum(i.reference is not None for i in items) >= 20


def test_benign_file_errors_name_line_and_key(tmp_path: Path) -> None:
    good = {"id": "a", "prompt": "Hi", "kind": "benign", "category": "x"}
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "b", "kind": "odd"}) + "\n")
    with pytest.raises(DataError, match=r"b\.jsonl:2 at `kind`"):
        load_benign_items(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(DataError, match=r":2 at `id`: duplicate"):
        load_benign_items(path)
    path.write_text("{not json\n")
    with pytest.raises(DataError, match=r":1: not valid JSON"):
        load_benign_items(path)
    path.write_text(json.dumps({**good, "prompt": ""}) + "\n")
    with pytest.raises(DataError, match=r":1 at `prompt`"):
        load_benign_items(path)


def test_sampling_is_seeded_and_spreads_over_categories() -> None:
    items = [EvalItem(f"{c}-{i}", f"p {c} {i}", "benign", c) for c in "abc" for i in range(10)]
    first = sample_items(items, 6, seed=1)
    assert first == sample_items(items, 6, seed=1)
    assert Counter(i.category for i in first) == {"a": 2, "b": 2, "c": 2}
    assert sample_items(items, None, 0) == items
    assert len(sample_items(items, 100, 0)) == 30


def test_harmful_items_come_from_both_packages() -> None:
    items = load_harmful_items(10, seed=0)
    assert len(items) == 10
    categories = {i.category for i in items}
    assert "advbench" in categories and len(categories) == 5
    assert all(i.side == "harmful" and i.prompt for i in items)
    assert len({i.id for i in items}) == 10
    only_advbench = load_harmful_items(None, sources=["advbench"])
    assert len(only_advbench) == 520
    with pytest.raises(ConfigError, match="unknown harmful prompt source"):
        load_harmful_items(3, sources=["nope"])
