"""`cai2 run RECIPE`: run or resume a recipe with a progress bar per stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cai2.pipeline._context import StageProgress
from cai2.pipeline._recipe import load_recipe
from cai2.pipeline._runner import run_recipe


def run_command(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file, e.g. recipes/default.yaml.")],
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Delete the existing run with this id and start over."),
    ] = False,
    runs_dir: Annotated[
        Path | None,
        typer.Option(
            "--runs-dir",
            help="Folder of run directories (default: recipe's runs_dir, $CAI2_RUNS_DIR, ./runs).",
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run-id", help="Run to create or resume (default: recipe's run_id/name)."),
    ] = None,
    index_url: Annotated[
        str | None,
        typer.Option("--index-url", help="SQLAlchemy URL of the run index (default: SQLite)."),
    ] = None,
) -> None:
    """Run the stages of RECIPE; rerunning resumes where it stopped (Ctrl-C keeps finished work)."""
    loaded = load_recipe(recipe)
    console = Console(stderr=True)
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:

        def on_progress(report: StageProgress) -> None:
            task = tasks.get(report.stage)
            if task is None:
                tasks[report.stage] = progress.add_task(
                    report.stage, total=report.total, completed=report.completed
                )
            else:
                progress.update(task, total=report.total, completed=report.completed)

        run = run_recipe(
            loaded,
            runs_dir=runs_dir,
            index_url=index_url,
            run_id=run_id,
            restart=restart,
            on_progress=on_progress,
        )
    record = run.record
    table = Table(title=f"run {record.id}: {record.status.value}")
    for column in ("stage", "status", "metrics"):
        table.add_column(column)
    for stage in record.stages:
        metrics = ", ".join(f"{key}={value}" for key, value in stage.metrics.items())
        table.add_row(stage.name, stage.status.value, metrics or "-")
    out = Console()
    out.print(table)
    for stage in record.stages:
        summary_path = run.dir / "artifacts" / stage.name / "summary.json"
        if stage.kind == "evaluate" and summary_path.exists():
            from cai2.pipeline._evaluate import summary_table
            from cai2.store import read_json

            out.print(summary_table(read_json(summary_path)))
            typer.echo(f"report: {summary_path.parent / 'report.html'}")
    typer.echo(f"run directory: {run.dir}")


def register(app: typer.Typer) -> None:
    """Add `cai2 run` to the cai2 CLI."""
    app.command("run")(run_command)
