"""The red-team loop on the embedded SmolLM2-135M model (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cai2.models import ChatModel, load_model
from cai2.redteam import RedTeamConfig, RedTeamLoop


@pytest.mark.slow
def test_one_round_on_the_embedded_model(tmp_path: Path) -> None:
    config = RedTeamConfig.model_validate(
        {
            "rounds": 1,
            "seeds_per_round": 4,
            "strategies": ["plain", "roleplay", "past-tense"],
            "judge": "ensemble",
            "assess_context": False,
            "benign_per_round": 4,
            "revise_max": 2,
            "heldout_eval": 3,
            "benign_eval": 4,
            "attack_params": {"max_tokens": 24},
            "benign_params": {"max_tokens": 24},
            "sft": {"max_steps": 2, "batch_size": 4},
            "dpo": {"max_steps": 2, "batch_size": 2},
        }
    )
    cache: dict[str, ChatModel] = {}

    def load(spec: str) -> ChatModel:
        if spec not in cache:
            cache[spec] = load_model(spec)
        return cache[spec]

    result = RedTeamLoop(config, tmp_path, "hf:smollm2-135m", load).run()
    summary = result["rounds"][0]
    # The base model complies with most plain harmful requests (DESIGN.md: ~96% on AdvBench).
    assert summary["failures"] >= 4
    assert summary["trained"] == ["sft", "dpo"]
    assert summary["sft_final_loss"] == summary["sft_final_loss"]  # not NaN
    assert set(result["evaluations"]) == {"0", "1"}
    calibration = json.loads((tmp_path / "judge.json").read_text())
    assert calibration["n"] > 100 and calibration["accuracy"] > 0.7
    assert (tmp_path / "report" / "report.html").exists()
