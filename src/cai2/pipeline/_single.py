"""Run one stage outside a recipe file: what `cai2 pipeline sl|rl|redteam` share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cai2.store import Run

# Options every `cai2 pipeline <stage>` command takes, spelled once.
PromptsOption = Annotated[
    list[str] | None,
    typer.Option("--prompts", help="Training prompt set or .jsonl (repeatable)."),
]
LimitOption = Annotated[
    int | None, typer.Option("--limit", min=1, help="First N prompts of each set.")
]
RunIdOption = Annotated[str, typer.Option("--run-id", help="Run to create or resume.")]
RunsDirOption = Annotated[Path | None, typer.Option("--runs-dir", help="Folder of runs.")]
RestartOption = Annotated[bool, typer.Option("--restart", help="Delete the run and start over.")]


def run_single_stage(
    stage: str,
    config: dict[str, Any],
    *,
    model: str,
    run_id: str,
    runs_dir: Path | None,
    restart: bool,
) -> Run:
    """Run ``stage`` with ``config`` as a one-stage recipe, with a progress bar, and print metrics.

    The run is created or resumed under ``run_id``; the stage's metrics are printed one per line,
    then the run directory.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cai2.pipeline._context import StageProgress
    from cai2.pipeline._recipe import Recipe, StageEntry
    from cai2.pipeline._runner import run_recipe

    recipe = Recipe(
        name=stage,
        description=f"cai2 pipeline {stage}",
        model=model,
        run_id=run_id,
        runs_dir=runs_dir,
        stages=[StageEntry(stage=stage, config=config)],
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(stage, total=None)

        def on_progress(report: StageProgress) -> None:
            bar.update(task, completed=report.completed, total=report.total)

        run = run_recipe(recipe, restart=restart, on_progress=on_progress)
    for record in run.record.stages:
        for key, value in record.metrics.items():
            typer.echo(f"{key}: {value}")
    typer.echo(f"run directory: {run.dir}")
    return run
