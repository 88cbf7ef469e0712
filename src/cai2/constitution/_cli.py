"""`cai2 constitution validate|show|schema|diff|citations`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from cai2.constitution._diff import diff_constitutions
from cai2.constitution._loader import BUILTIN_CONSTITUTIONS, load_constitution
from cai2.constitution._resolve import ActiveConstitution, resolve
from cai2.constitution._schema import constitution_json_schema_text
from cai2.context._types import Context, RiskTier
from cai2.errors import Cai2Error, ConfigError, DataError

constitution_app = typer.Typer(
    help="Write, check and inspect layered constitutions.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the `constitution` command group to the cai2 CLI."""
    app.add_typer(constitution_app, name="constitution")


@constitution_app.command("validate")
def validate_command(
    constitutions: Annotated[
        list[str], typer.Argument(help="Built-in names or paths of YAML files to check.")
    ],
) -> None:
    """Check constitutions; exit 2 and print file:line at key for each one that is invalid."""
    failures = 0
    for reference in constitutions:
        try:
            constitution = load_constitution(reference)
            flat = constitution.flatten()
        except Cai2Error as exc:
            failures += 1
            err_console.print(
                f"[red]invalid[/red] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            continue
        count = len(flat.principle_ids())
        console.print(
            f"[green]ok[/green] {reference}: {flat.name} v{flat.version}, "
            f"{len(flat.layers)} layers, {count} principles",
            highlight=False,
            soft_wrap=True,
        )
    if failures:
        raise typer.Exit(2)


@constitution_app.command("show")
def show_command(
    constitution: Annotated[str, typer.Argument(help="Built-in name or path.")],
    risk: Annotated[
        RiskTier, typer.Option("--risk", help="Risk tier of the context.")
    ] = RiskTier.low,
    domain: Annotated[
        list[str] | None, typer.Option("--domain", help="Domain of the context (repeatable).")
    ] = None,
    complexity: Annotated[
        float, typer.Option("--complexity", min=0.0, max=1.0, help="Task complexity, 0 to 1.")
    ] = 0.0,
    explain: Annotated[bool, typer.Option("--text", help="Plain text instead of a tree.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Also list what is off and why.")] = False,
) -> None:
    """Show which layers and principles are active for a context, and why."""
    loaded = load_constitution(constitution)
    context = Context(risk=risk, domains=domain or [], complexity=complexity)
    active = resolve(loaded, context)
    if explain:
        console.print(active.explain(), highlight=False, markup=False, soft_wrap=True)
        return
    console.print(_tree(active, show_all=show_all))


@constitution_app.command("schema")
def schema_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Print the JSON Schema of the constitution format (for editor completion)."""
    text = constitution_json_schema_text()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {output}")


@constitution_app.command("diff")
def diff_command(
    before: Annotated[str, typer.Argument(help="Constitution to compare from (name or path).")],
    after: Annotated[
        str | None,
        typer.Argument(help="Constitution to compare to; default: BEFORE's parent."),
    ] = None,
) -> None:
    """Show layers and principles added, removed or changed between two constitutions."""
    first = load_constitution(before)
    if after is None:
        if first.parent is None:
            raise ConfigError(
                f"`{before}` extends nothing; give a second constitution to compare with "
                f"(e.g. one of {', '.join(BUILTIN_CONSTITUTIONS)})"
            )
        difference = diff_constitutions(first.parent, first)
    else:
        difference = diff_constitutions(first, load_constitution(after))
    colours = {"+": "green", "-": "red", "~": "yellow"}
    for line in difference.lines():
        colour = colours.get(line[:1])
        text = escape(line) if colour is None else f"[{colour}]{escape(line)}[/{colour}]"
        console.print(text, highlight=False, soft_wrap=True)


def _reply_text(value: Any, where: str, field: str) -> str:
    """A reply as a string: the field itself, or the last message's ``content`` of a list."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        content = value[-1].get("content")
        if isinstance(content, str):
            return content
    raise DataError(
        f"{where}: `{field}` is neither a string nor a list of {{'role', 'content'}} messages"
    )


def read_replies(path: Path, field: str) -> list[str]:
    """The ``field`` of every JSON line of ``path`` (see :func:`_reply_text`).

    Raises:
        DataError: naming file and line for a missing file, invalid JSON or a missing field.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    replies = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: invalid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or field not in row:
            raise DataError(f"{where}: no field `{field}` (use --field to name the reply field)")
        replies.append(_reply_text(row[field], where, field))
    return replies


@constitution_app.command("citations")
def citations_command(
    files: Annotated[list[Path], typer.Argument(help="JSONL files of replies (one per line).")],
    field: Annotated[
        str, typer.Option("--field", help="Reply field: a string or a list of chat messages.")
    ] = "response",
    constitution: Annotated[
        str, typer.Option("--constitution", help="Built-in name or path to match quotes against.")
    ] = "cai-2.0",
    threshold: Annotated[
        float, typer.Option("--threshold", min=0.0, max=1.0, help="Similarity that counts.")
    ] = 0.8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: file → audit.")] = False,
) -> None:
    """Check whether replies that quote "a principle I follow" quote a real one."""
    from rich.table import Table

    from cai2.constitution._citations import audit_citations

    loaded = load_constitution(constitution)
    audits = {str(f): audit_citations(read_replies(f, field), loaded, threshold) for f in files}
    if as_json:
        typer.echo(json.dumps(audits, indent=2, ensure_ascii=False))
        return
    table = Table("file", "replies", "quoting a rule", "real principle", "made up")
    for name, audit in audits.items():
        counts = (audit[key] for key in ("replies", "citing", "faithful", "invented"))
        table.add_row(escape(name), *(str(count) for count in counts))
    console.print(table)
    for name, audit in audits.items():
        for quote in audit["invented_examples"]:
            console.print(f"made up in {escape(name)}: {escape(quote)!r}", highlight=False)


def _tree(active: ActiveConstitution, *, show_all: bool) -> Tree:
    ctx = active.context
    root = Tree(
        f"[bold]{escape(active.name)}[/bold] v{escape(active.version)}  "
        f"[dim]risk={ctx.risk.value} domains={','.join(ctx.domains) or '-'} "
        f"complexity={ctx.complexity:.2f}[/dim]"
    )
    for layer in active.layers:
        branch = root.add(
            f"[cyan]{layer.id}[/cyan] [dim]{layer.kind}, priority {layer.priority}[/dim] — "
            f"{escape(layer.reason)}"
        )
        nodes: dict[str, Tree] = {}
        for principle in active.layer_tree(layer.id):
            parent = nodes.get(principle.parent_id or "", branch)
            node = parent.add(
                f"{principle.id} [dim](depth {principle.depth}, {principle.severity.value})[/dim]"
                + (f" — {escape(principle.reason)}" if principle.level else "")
            )
            for line in principle.overrides:
                node.add(f"[magenta]{escape(line)}[/magenta]")
            nodes[principle.id] = node
    if show_all and active.inactive:
        off = root.add("[dim]off[/dim]")
        for item in active.inactive:
            off.add(f"[dim]{item.kind} {item.id}: {escape(item.reason)}[/dim]")
    return root
