"""The default recipe's generate stage on the real embedded model (slow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cai2.pipeline import StageProgress, run_recipe

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_default_recipe_on_the_embedded_model_answers_and_resumes(
    tmp_path: Path, runs_dir: Path
) -> None:
    recipe = yaml.safe_load((REPO / "recipes" / "default.yaml").read_text())
    # The shipped recipe, cut to 4 prompts in batches of 2 so the test takes seconds, not minutes.
    recipe["stages"][0]["config"].update(limit=4, batch_size=2)
    path = tmp_path / "default.yaml"
    path.write_text(yaml.safe_dump(recipe))

    def stop_after_two(report: StageProgress) -> None:
        if report.completed == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_recipe(path, on_progress=stop_after_two)
    run = run_recipe(path)

    records = run.read_jsonl("baseline/responses.jsonl")
    assert [r["id"] for r in records] == ["helpful-01", "helpful-02", "helpful-03", "helpful-04"]
    for record in records:
        assert record["model"] == "hf:smollm2-135m"
        assert 1 <= record["completion_tokens"] <= 48
        # A real instruct model answers in words, unlike the random tiny model.
        assert len(re.findall(r"\b(the|a|to|and|you|of|is|in)\b", record["response"].lower())) >= 2
    assert "boil" in records[0]["response"].lower() or "egg" in records[0]["response"].lower()
    assert run.record.stages[0].metrics["responses"] == 4
