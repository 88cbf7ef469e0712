"""The `redteam` recipe stage: :class:`RedTeamLoop` inside a run of the run store."""

from __future__ import annotations

from typing import Any

from cai2.pipeline._context import StageContext, StageMetrics
from cai2.redteam._loop import RedTeamConfig, RedTeamLoop


def run_redteam(context: StageContext, config: RedTeamConfig) -> StageMetrics:
    """Run the red-team rounds in the stage folder; metrics are per round and per evaluation."""
    state = {"what": ""}

    def progress(what: str, done: int, total: int) -> None:
        state["what"] = what
        context.progress(done, total)

    loop = RedTeamLoop(
        config,
        context.stage.dir,
        context.model_for(config.model),
        context.load_model,
        progress,
    )
    result = loop.run()
    metrics: dict[str, Any] = {
        "final_model": result["final_model"],
        "model_out": result["final_model"],
    }
    for summary in result["rounds"]:
        number = summary["round"]
        metrics[f"round{number}_failures"] = summary["failures"]
        metrics[f"round{number}_train_asr"] = summary["train_asr"]
    for key, evaluation in result["evaluations"].items():
        if "asr" in evaluation:
            metrics[f"heldout_asr_round{key}"] = evaluation["asr"]["estimate"]
        if "benign_answer_rate" in evaluation:
            metrics[f"benign_answer_rate_round{key}"] = evaluation["benign_answer_rate"]["estimate"]
    return metrics
