"""`cai2 runs list` and `cai2 runs show RUN_ID`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from cai2.store._files import read_jsonl
from cai2.store._store import RunStore, Status

RunsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--runs-dir", help="Folder of run directories (default: $CAI2_RUNS_DIR or ./runs)."
    ),
]
IndexUrlOption = Annotated[
    str | None,
    typer.Option(
        "--index-url",
        help="SQLAlchemy URL of the run index (default: $CAI2_INDEX_URL or runs-dir/index.sqlite)",
    ),
]
_STATUS_STYLE = {
    Status.PENDING: "dim",
    Status.RUNNING: "yellow",
    Status.DONE: "green",
    Status.FAILED: "red",
}


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def _status(status: Status) -> str:
    return f"[{_STATUS_STYLE[status]}]{status.value}[/]"


def _metrics_text(metrics: dict[str, object]) -> str:
    parts = []
    for key, value in metrics.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{key}={shown}")
    return ", ".join(parts) or "-"


def list_runs(runs_dir: RunsDirOption = None, index_url: IndexUrlOption = None) -> None:
    """List the runs in the index, newest first."""
    store = RunStore(runs_dir, url=index_url)
    try:
        records = store.list_runs()
    finally:
        store.close()
    console = Console()
    if not records:
        console.print(f"no runs in {store.url}")
        return
    table = Table(title=f"runs in {store.root}")
    for column in ("id", "name", "status", "stages done", "created (UTC)", "updated (UTC)"):
        table.add_column(column)
    for record in records:
        done = sum(stage.status is Status.DONE for stage in record.stages)
        table.add_row(
            record.id,
            record.name,
            _status(record.status),
            f"{done}/{len(record.stages)}",
            _when(record.created_at),
            _when(record.updated_at),
        )
    console.print(table)


def show_run(
    run_id: Annotated[str, typer.Argument(help="Id of the run (see `cai2 runs list`).")],
    runs_dir: RunsDirOption = None,
    index_url: IndexUrlOption = None,
) -> None:
    """Show one run: config, stages with status and metrics, and artifact files."""
    store = RunStore(runs_dir, url=index_url)
    try:
        run = store.get_run(run_id)
        record = run.record
        config = run.config
        artifacts = run.artifact_paths()
    finally:
        store.close()
    console = Console()
    console.print(f"[bold]run[/bold] {record.id} ({record.name}) {_status(record.status)}")
    console.print(f"directory: {record.directory}")
    console.print(f"created {_when(record.created_at)}, updated {_when(record.updated_at)} (UTC)")
    if record.error:
        console.print(f"[red]error:[/red] {record.error}", highlight=False)
    console.print("[bold]config[/bold]")
    console.print(Syntax(yaml.safe_dump(config, sort_keys=False), "yaml"))
    stages = Table(title="stages")
    for column in ("#", "stage", "kind", "status", "started", "finished", "metrics"):
        stages.add_column(column)
    for stage in record.stages:
        status = _status(stage.status)
        if stage.error:
            status += f" ({stage.error})"
        stages.add_row(
            str(stage.position),
            stage.name,
            stage.kind,
            status,
            _when(stage.started_at),
            _when(stage.finished_at),
            _metrics_text(stage.metrics),
        )
    console.print(stages)
    if record.metrics:
        console.print(f"[bold]run metrics[/bold]: {_metrics_text(record.metrics)}")
    files = Table(title="artifacts")
    files.add_column("path")
    files.add_column("bytes", justify="right")
    files.add_column("records", justify="right")
    for path in artifacts:
        records = str(len(read_jsonl(path))) if path.suffix == ".jsonl" else ""
        files.add_row(str(path), str(path.stat().st_size), records)
    console.print(files)
    console.print(f"log: {run.log_path}")


def register(app: typer.Typer) -> None:
    """Add the `runs` command group to the cai2 CLI."""
    runs_app = typer.Typer(help="Inspect stored runs.", no_args_is_help=True)
    runs_app.command("list")(list_runs)
    runs_app.command("show")(show_run)
    app.add_typer(runs_app, name="runs")
