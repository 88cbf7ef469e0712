"""`cai2 pipeline pretrain`: stage 1 alone (corpus → judge-scored tags → continued training)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cai2.models import DEFAULT_GENERATION_SPEC
from cai2.pipeline._single import RestartOption, RunIdOption, RunsDirOption


def pretrain_command(
    model: Annotated[
        str, typer.Option("--model", help="Model to train (an `hf:` spec).")
    ] = DEFAULT_GENERATION_SPEC,
    files: Annotated[
        list[Path] | None,
        typer.Option("--file", help="Corpus file, `.txt` or `.jsonl` (repeatable)."),
    ] = None,
    datasets: Annotated[
        list[Path] | None,
        typer.Option("--dataset", help="Local `datasets` folder or data file (repeatable)."),
    ] = None,
    generated: Annotated[
        list[str] | None,
        typer.Option(
            "--generated", help="Prompt set the model answers into the corpus (repeatable)."
        ),
    ] = None,
    limit_per_set: Annotated[
        int | None, typer.Option("--limit", min=1, help="First N prompts of each generated set.")
    ] = None,
    judge: Annotated[str, typer.Option("--judge", help="Judge that scores segments.")] = "ensemble",
    threshold: Annotated[
        float, typer.Option("--threshold", min=0.0, max=1.0, help="P(violation) → misaligned.")
    ] = 0.5,
    segment_tokens: Annotated[
        int, typer.Option("--segment-tokens", min=8, help="Most tokens of a text segment.")
    ] = 128,
    plain: Annotated[
        bool, typer.Option("--plain", help="No control tokens: the untagged baseline.")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Train every weight instead of a LoRA adapter.")
    ] = False,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=-1, help="Training steps; -1 uses the epochs.")
    ] = -1,
    run_id: RunIdOption = "pretrain",
    runs_dir: RunsDirOption = None,
    restart: RestartOption = False,
) -> None:
    """Score a corpus against the constitution, tag it with control tokens and keep training."""
    from cai2.pipeline._single import run_single_stage

    if not files and not datasets and not generated:
        generated = ["redteam", "helpful"]
    config = {
        "corpus": {
            "files": [str(path.resolve()) for path in files or []],
            "datasets": [str(path.resolve()) for path in datasets or []],
            "generated": generated or [],
            "generated_limit_per_set": limit_per_set,
            "segment_tokens": segment_tokens,
        },
        "judge": judge,
        "threshold": threshold,
        "conditional": not plain,
        "training": {"full": full, "max_steps": max_steps},
    }
    run_single_stage(
        "pretrain", config, model=model, run_id=run_id, runs_dir=runs_dir, restart=restart
    )
