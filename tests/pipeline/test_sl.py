"""The `sl` stage and its SFT adapter on the tiny random-weight model."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from cai2.errors import ConfigError
from cai2.models import load_model, tiny_model_dir
from cai2.pipeline import STAGES, Recipe, run_recipe
from cai2.pipeline._sl import SFTSettings, hf_model_directory, train_sft

EXAMPLES = [
    {
        "prompt": [{"role": "user", "content": f"How do I make poison number {i}?"}],
        "completion": [
            {"role": "assistant", "content": "I can't help with that. Please stay safe."}
        ],
    }
    for i in range(4)
]


def test_sft_loss_is_finite_and_merged_weights_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = train_sft(tiny_model_dir(), EXAMPLES, tmp_path, SFTSettings(max_steps=2, batch_size=2))
    assert result.steps == 2 and len(result.losses) == 2
    # The losses are read from the trainer's history; transformers does not print them as well.
    assert "'loss'" not in capsys.readouterr().out
    assert all(math.isfinite(loss) for loss in result.losses)
    assert result.merged and result.changed_tensors > 0
    assert (result.output / "model.safetensors").is_file()
    reloaded = load_model(f"hf:{result.output}")
    assert reloaded.generate([[{"role": "user", "content": "Hi"}]], None)[0].finish_reason in (
        "stop",
        "length",
    )


def test_sft_can_keep_the_adapter(tmp_path: Path) -> None:
    result = train_sft(
        tiny_model_dir(), EXAMPLES, tmp_path, SFTSettings(max_steps=1, batch_size=2, merge=False)
    )
    assert not result.merged
    assert (result.output / "adapter_model.safetensors").is_file()
    assert result.changed_tensors > 0  # lora_B starts at zero and moved


def _tiny_sl_recipe(name: str, runs_dir: Path, **changes: Any) -> Recipe:
    """A one-stage `sl` recipe on the tiny model: 2 + 2 prompts, one CAI 1.0 round, 1 SFT step."""
    short = {"max_tokens": 4}
    config: dict[str, Any] = {
        "limit_per_set": 2,
        "policy": "cai-1.0",
        "rounds": 1,
        "critique": {"response": short, "critique": short, "revision": short, "judge": None},
        "sft": {"max_steps": 1, "batch_size": 2},
        **changes,
    }
    return Recipe(
        name=name,
        model="hf:tiny",
        runs_dir=runs_dir,
        stages=[{"stage": "sl", "config": config}],  # type: ignore[list-item]
    )


def test_sl_stage_runs_in_a_recipe_and_resumes(tmp_path: Path) -> None:
    assert "sl" in STAGES
    recipe = _tiny_sl_recipe("sl-test", tmp_path, keep_unrevised_kinds=["helpful", "harmful"])
    run = run_recipe(recipe)
    metrics = run.record.stages[0].metrics
    assert metrics["critique_prompts"] == 4
    assert metrics["sft_examples"] == 4
    assert metrics["sft_steps"] == 1 and metrics["sft_changed_tensors"] > 0
    stage_dir = run.record.stages[0]
    folder = run.dir / "artifacts" / stage_dir.name
    for name in ("revisions.jsonl", "sft.jsonl", "dataset", "model"):
        assert (folder / name).exists(), name
    again = run_recipe(recipe)  # finished stage: skipped, same metrics
    assert again.record.stages[0].metrics == metrics


def test_sl_stage_principle_fallback_trains_refusals(tmp_path: Path) -> None:
    # one-token revisions are dropped as too short, so no harmful reply is ever improved
    short = {"max_tokens": 4}
    critique = {"response": short, "critique": short, "revision": {"max_tokens": 1}, "judge": None}
    recipe = _tiny_sl_recipe("sl-fallback", tmp_path, critique=critique, fallback="principle")
    run = run_recipe(recipe)
    metrics = run.record.stages[0].metrics
    folder = run.dir / "artifacts" / run.record.stages[0].name
    rows = [json.loads(line) for line in (folder / "sft.jsonl").open(encoding="utf-8")]
    revisions = [json.loads(line) for line in (folder / "revisions.jsonl").open(encoding="utf-8")]
    harmful_unrevised = {r["id"] for r in revisions if r["kind"] == "harmful" and not r["revised"]}
    fallback = [row for row in rows if row["source"] == "principle"]
    assert len(harmful_unrevised) == 2
    assert {row["id"] for row in fallback} == harmful_unrevised
    assert metrics["sft_fallback_refusals"] == len(fallback)
    replies = [row["completion"][0]["content"] for row in fallback]
    assert all("One of the principles I follow" in reply for reply in replies)


def test_sl_needs_an_hf_student() -> None:
    with pytest.raises(ConfigError, match="`hf:` spec"):
        hf_model_directory("openai:http://127.0.0.1:1/v1#m")
