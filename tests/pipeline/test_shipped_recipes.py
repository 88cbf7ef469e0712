"""Every recipe shipped in recipes/ validates: stage names, stage configs and model references."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai2.pipeline import load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_validates(path: Path) -> None:
    loaded = load_recipe(path)
    ids = [stage.id for stage in loaded.stages]
    assert len(ids) == len(set(ids))
    # A `@<stage id>` model reference must name a stage that runs earlier in the recipe.
    for position, stage in enumerate(loaded.stages):
        config = stage.config.model_dump()
        references = [config.get("model")]
        references += list((config.get("models") or {}).values())
        for reference in references:
            if isinstance(reference, str) and reference.startswith("@"):
                assert reference[1:] in ids[:position], f"{stage.id}: {reference}"


def test_the_headline_recipe_compares_the_three_models() -> None:
    loaded = load_recipe(RECIPES[[p.stem for p in RECIPES].index("headline")])
    evaluate = loaded.stages[-1].config.model_dump()
    assert set(evaluate["models"]) == {"base", "cai1", "cai2"}
    assert evaluate["reduction_against"] == "cai1"
    # Evaluation data stays apart from training data: HarmBench seeds train the red team.
    assert "harmbench" not in evaluate["eval"]["harmful_sources"]
