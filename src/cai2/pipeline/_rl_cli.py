"""`cai2 pipeline rl`: stage 4 on its own (AI feedback → pairs → DPO, or online GRPO, with LoRA)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from cai2.models import DEFAULT_GENERATION_SPEC
from cai2.pipeline._single import (
    LimitOption,
    PromptsOption,
    RestartOption,
    RunIdOption,
    RunsDirOption,
)


def rl_command(
    model: Annotated[
        str, typer.Option("--model", help="Policy model (an `hf:` spec, e.g. the sl output).")
    ] = DEFAULT_GENERATION_SPEC,
    prompts: PromptsOption = None,
    limit_per_set: LimitOption = None,
    oversight: Annotated[
        Path | None,
        typer.Option("--oversight", help="Oversight YAML (default: refusal → MiniLM head)."),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", min=2, help="Replies per prompt.")] = 4,
    min_margin: Annotated[
        float, typer.Option("--min-margin", min=0.0, max=1.0, help="Smallest label gap kept.")
    ] = 0.2,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 96,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=-1, help="Training steps; -1 uses the epochs.")
    ] = -1,
    method: Annotated[
        Literal["dpo", "grpo"],
        typer.Option(
            "--method",
            help="dpo: pairs sampled once (offline); grpo: the policy samples at every step and "
            "the hierarchy's label is the reward (online; --samples replies per prompt a step).",
        ),
    ] = "dpo",
    run_id: RunIdOption = "rl",
    runs_dir: RunsDirOption = None,
    restart: RestartOption = False,
) -> None:
    """Sample replies, label them through the oversight hierarchy, train with DPO (or GRPO)."""
    from cai2.pipeline._single import run_single_stage

    config: dict[str, object] = {
        "prompts": prompts or ["redteam", "helpful"],
        "limit_per_set": limit_per_set,
        "oversight": str(oversight.resolve()) if oversight is not None else None,
        "preferences": {
            "samples_per_prompt": samples,
            "min_margin": min_margin,
            "params": {"max_tokens": max_tokens, "temperature": 1.0, "top_p": 0.95},
        },
        "dpo": {"max_steps": max_steps},
    }
    if method == "grpo":
        config["method"] = "grpo"
        config["grpo"] = {
            "max_steps": max_steps,
            "num_generations": samples,
            "max_completion_length": max_tokens,
            "batch_size": 2 * samples,
        }
    run_single_stage("rl", config, model=model, run_id=run_id, runs_dir=runs_dir, restart=restart)
