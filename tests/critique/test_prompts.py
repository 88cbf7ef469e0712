import pytest

from cai2.benchmarks import load_advbench
from cai2.critique import load_prompt_set, training_items
from cai2.critique._prompts import _normalise
from cai2.errors import DataError
from cai2.evals import load_benign_items


@pytest.mark.parametrize(("name", "kind"), [("redteam", "harmful"), ("helpful", "helpful")])
def test_prompt_sets_are_large_unique_and_labelled(name: str, kind: str) -> None:
    items = load_prompt_set(name)
    assert len(items) >= 150
    assert all(item.kind == kind for item in items)
    assert len({_normalise(item.prompt) for item in items}) == len(items)


def test_training_prompts_are_disjoint_from_evaluation_prompts() -> None:
    held_out = {_normalise(p) for p in load_advbench()}
    held_out |= {_normalise(item.prompt) for item in load_prompt_set("default")}
    held_out |= {_normalise(item.prompt) for item in load_benign_items()}
    items = training_items()
    assert len(items) >= 300
    assert not any(_normalise(item.prompt) in held_out for item in items)


def test_training_items_interleave_and_limit() -> None:
    items = training_items(limit_per_set=2, eval_prompts=[])
    assert [item.kind for item in items] == ["harmful", "helpful", "harmful", "helpful"]


def test_an_evaluation_prompt_in_training_is_refused() -> None:
    first = load_prompt_set("redteam")[0].prompt
    with pytest.raises(DataError, match="redteam-001"):
        training_items(limit_per_set=3, eval_prompts=[first.upper()])
