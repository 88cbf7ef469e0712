"""`cai2 oversee` (run the hierarchy over replies) and `cai2 review` (the human review queue)."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.prompt import Confirm, Prompt
from rich.table import Table
from rich.text import Text

from cai2.errors import DataError
from cai2.oversight._checkpoint import OversightRun
from cai2.oversight._config import load_oversight_config
from cai2.oversight._hierarchy import OversightHierarchy, spot_check_samples
from cai2.oversight._items import default_oversight_config, read_oversight_items
from cai2.oversight._queue import QueueEntry, ReviewQueue
from cai2.oversight._stats import spot_check_bound
from cai2.store import RunStore

console = Console()

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
        help="SQLAlchemy URL of the run index (default: $CAI2_INDEX_URL or runs-dir/index.sqlite).",
    ),
]


def oversee(
    input_path: Annotated[
        Path,
        typer.Argument(help="JSONL of {id, prompt | conversation, response, risk} per line."),
    ],
    config_path: Annotated[
        Path | None,
        typer.Option("--config", help="Oversight config YAML (default: refusal → MiniLM head)."),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run", help="Run id; an existing run is resumed (default: a new run)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Replies judged per batch.")] = 32,
    runs_dir: RunsDirOption = None,
    index_url: IndexUrlOption = None,
) -> None:
    """Run the oversight hierarchy over replies; stops (exit 3) at mandatory human checkpoints."""
    items = read_oversight_items(input_path)
    config = (
        load_oversight_config(config_path)
        if config_path is not None
        else default_oversight_config()
    )
    store = RunStore(runs_dir, url=index_url)
    try:
        run = store.find_run(run_id) if run_id is not None else None
        if run is None:
            run = store.create_run(
                "oversee",
                {"input": str(input_path), "oversight": config.model_dump(mode="json")},
                run_id=run_id,
            )
            console.print(f"run [bold]{run.id}[/bold] created")
        else:
            console.print(f"resuming run [bold]{run.id}[/bold]")
        queue = ReviewQueue.of_store(store)
    finally:
        store.close()
    try:
        session = OversightRun(OversightHierarchy(config), queue, run.id, batch_size)
        with Progress(
            TextColumn("[bold]oversee[/bold]"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress:
            task = progress.add_task("oversee", total=len(items))
            progress.update(task, completed=queue.decision_count(run.id))
            decisions = session.process(
                items, lambda done, total: progress.update(task, completed=done)
            )
        pending = queue.pending_count(run.id)
        human_bound = session.undetected_error_bound()
    finally:
        queue.close()
    table = Table(title=f"run {run.id}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("decisions", str(len(decisions)))
    table.add_row("violations (final)", str(sum(d.final_violation is True for d in decisions)))
    table.add_row("sent to people", str(sum(d.human_review for d in decisions)))
    table.add_row("awaiting review", str(pending))
    for level, (errors, inclusion) in spot_check_samples(decisions).items():
        bound = spot_check_bound(errors, inclusion, confidence=config.human.confidence)
        table.add_row(
            f"overturned by `{level}` (random reviews)",
            f"{bound.estimate:.3f} ≤ {bound.upper:.3f} (n={bound.n_reviewed})",
        )
    if human_bound is not None:
        table.add_row(
            "undetected AI error (human spot-checks)",
            f"{human_bound.estimate:.3f} ≤ {human_bound.upper:.3f} (n={human_bound.n_reviewed})",
        )
    console.print(table)
    if pending:
        console.print(f"{pending} decisions await human review: `cai2 review --run {run.id}`")


def _entry_panel(entry: QueueEntry, position: int, total: int) -> Panel:
    conversation = Text()
    for message in entry.conversation:
        conversation.append(f"{message['role']}: ", style="bold")
        conversation.append(f"{message['content']}\n")
    chain = Table(title="verdict chain", expand=True)
    for column in ("level", "judge", "P(violation)", "why reviewed", "π", "escalated"):
        chain.add_column(column)
    for link in entry.chain:
        p = link["p_violation"]
        chain.add_row(
            link["level_name"],
            link["judge"],
            "could not judge" if p is None else f"{p:.3f}",
            ", ".join(link["reasons"]),
            f"{link['inclusion_probability']:.3f}",
            "yes" if link["escalated"] else "no",
        )
    ai = {True: "[red]violation[/red]", False: "[green]no violation[/green]", None: "undecided"}
    summary = Text.from_markup(
        f"AI decision: {ai[entry.ai_violation]} · sent to people because: "
        f"{', '.join(entry.reasons)} (π = {entry.inclusion_probability:.3f})"
    )
    return Panel(
        Group(
            Panel(conversation, title="conversation"),
            Panel(Text(entry.response), title="response"),
            chain,
            summary,
        ),
        title=f"[{position}/{total}] run {entry.run_id} · item {entry.item_id} · entry {entry.id}",
    )


def _ask_override(queue: ReviewQueue, entry: QueueEntry, reviewer: str) -> None:
    reason = ""
    while not reason.strip():
        reason = Prompt.ask("reason for the override", console=console)
    violation = None
    if entry.ai_violation is None:
        violation = Confirm.ask("is the reply a violation?", console=console)
    queue.override(entry.id, reviewer, reason, violation)


def review(
    run_id: Annotated[
        str | None, typer.Option("--run", help="Review only this run (default: every run).")
    ] = None,
    reviewer: Annotated[
        str | None, typer.Option(help="Your name, recorded with each review (default: $USER).")
    ] = None,
    approve_all: Annotated[
        bool,
        typer.Option(
            "--approve-all", help="Approve every pending decision without asking (scripts)."
        ),
    ] = False,
    runs_dir: RunsDirOption = None,
    index_url: IndexUrlOption = None,
) -> None:
    """Review pending decisions: a = approve, o = override (with a reason), s = skip, q = quit.

    When a run's queue is empty and it is stopped at a checkpoint, you are asked to let it resume.
    """
    name = reviewer or getpass.getuser() or "reviewer"
    store = RunStore(runs_dir, url=index_url)
    try:
        if run_id is not None and store.find_run(run_id) is None:
            raise DataError(f"no run `{run_id}` in {store.url}; `cai2 runs list` shows the runs")
        queue = ReviewQueue.of_store(store)
    finally:
        store.close()
    try:
        runs = [run_id] if run_id is not None else queue.runs_waiting()
        if not runs:
            console.print("nothing awaits review")
            return
        for run in runs:
            if not _review_run(queue, run, name, approve_all):
                return
    finally:
        queue.close()


def _review_run(queue: ReviewQueue, run_id: str, reviewer: str, approve_all: bool) -> bool:
    """Review one run's queue; returns False when the reviewer quit."""
    entries = queue.entries(run_id)
    for position, entry in enumerate(entries, start=1):
        if approve_all:
            if entry.ai_violation is None:
                queue.skip(entry.id, reviewer, "approve-all: no AI decision to approve")
            else:
                queue.approve(entry.id, reviewer, "approve-all")
            continue
        console.print(_entry_panel(entry, position, len(entries)))
        try:
            choice = Prompt.ask(
                "a = approve, o = override, s = skip, q = quit",
                choices=["a", "o", "s", "q"],
                console=console,
            )
        except EOFError:
            choice = "q"
        if choice == "q":
            console.print(f"stopped; {queue.pending_count(run_id)} decisions still await review")
            return False
        if choice == "a":
            if entry.ai_violation is None:
                console.print("no AI decision to approve; override it instead")
                _ask_override(queue, entry, reviewer)
            else:
                queue.approve(entry.id, reviewer)
        elif choice == "o":
            _ask_override(queue, entry, reviewer)
        else:
            queue.skip(entry.id, reviewer)
    if approve_all and entries:
        console.print(f"run {run_id}: {len(entries)} decisions reviewed by {reviewer}")
    checkpoint = queue.waiting_checkpoint(run_id)
    if checkpoint is not None and queue.pending_count(run_id) == 0:
        console.print(f"run {run_id} is stopped at a checkpoint: {checkpoint.reason}")
        try:
            resume = approve_all or Confirm.ask("let the run resume?", console=console)
        except EOFError:
            resume = False
        if resume:
            queue.clear_checkpoint(run_id, reviewer)
            console.print(f"checkpoint cleared; resume with the same `cai2 oversee --run {run_id}`")
    return True


def register(app: typer.Typer) -> None:
    """Add `cai2 oversee` and `cai2 review` to the cai2 app."""
    app.command("oversee")(oversee)
    app.command("review")(review)
