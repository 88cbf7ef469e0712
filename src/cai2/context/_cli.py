"""`cai2 assess`: a prompt's tier, domains and complexity, with evidence and the active layers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cai2.errors import DataError

console = Console()
err_console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the `assess` command to the cai2 CLI."""
    app.command("assess")(assess_command)


def assess_command(
    text: Annotated[str | None, typer.Argument(help="The prompt to assess.")] = None,
    conversation: Annotated[
        Path | None,
        typer.Option(
            "--conversation",
            help="A JSON file holding a list of {role, content} turns (instead of TEXT).",
        ),
    ] = None,
    constitution: Annotated[
        str,
        typer.Option(
            "--constitution",
            help="Built-in name or YAML path of the constitution whose active layers to show; "
            "`none` to skip.",
        ),
    ] = "cai-2.0",
    llm: Annotated[
        str | None,
        typer.Option("--llm", help="Also ask this model (a spec such as `openai:URL#model`)."),
    ] = None,
    encoder: Annotated[
        str | None,
        typer.Option(
            "--encoder",
            help="Encoder variant, e.g. onnx-l4-int8-ft (fine-tuned: minutes to train on first "
            "use); the default's when omitted. docs/context.md compares them.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Assess TEXT: risk tier, domains and complexity, with the evidence and the active layers."""
    from cai2.context._default import load_default_assessor
    from cai2.context._onnx import EncoderSpec

    subject = _subject(text, conversation)
    spec = EncoderSpec.from_label(encoder) if encoder else None
    status = err_console.status("loading the context assessor", spinner="dots")
    with status:
        assessor = load_default_assessor(progress=lambda message: status.update(message), spec=spec)
    if llm:
        from cai2.context._assessor import ContextAssessor
        from cai2.context._llm import LLMRiskAssessor
        from cai2.models import load_model

        assessor = ContextAssessor(
            assessor.encoder,
            assessor.heads,
            rules=assessor.rules,
            llm=LLMRiskAssessor(load_model(llm)),
        )
    context = assessor.assess(subject)
    active = _resolve(constitution, context)
    if as_json:
        payload: dict[str, Any] = context.model_dump(mode="json")
        if active is not None:
            payload["constitution"] = {
                "name": active.name,
                "layers": [{"id": layer.id, "reason": layer.reason} for layer in active.layers],
                "principles": list(active.ids),
            }
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    colour = {"low": "green", "medium": "yellow", "high": "red", "critical": "bold red"}
    console.print(
        f"risk [{colour[context.risk.value]}]{context.risk.value}[/]  "
        f"domains {', '.join(context.domains)}  complexity {context.complexity:.2f}"
    )
    table = Table("source", "why", show_header=True, header_style="bold")
    for item in context.evidence:
        table.add_row(item.source, escape(item.detail))
    console.print(table)
    if active is not None:
        console.print(
            f"[bold]{active.name}[/]: {len(active.layers)} active layers, "
            f"{len(active.principles)} active principles"
        )
        for layer in active.layers:
            console.print(escape(f"  • {layer.id} [{layer.kind}] — {layer.reason}"))


def _subject(text: str | None, conversation: Path | None) -> Any:
    if (text is None) == (conversation is None):
        raise DataError("give either TEXT or `--conversation FILE` (exactly one)")
    if conversation is None:
        return text
    try:
        turns = json.loads(conversation.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{conversation}: file not found") from exc
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{conversation}:{exc.lineno}: malformed JSON ({exc.msg}); expected a list of "
            "{role, content} turns"
        ) from exc
    if not isinstance(turns, list):
        raise DataError(f"{conversation}: expected a JSON list of {{role, content}} turns")
    return turns


def _resolve(constitution: str, context: Any) -> Any:
    if not constitution or constitution.lower() == "none":
        return None
    try:
        from cai2.constitution import load_constitution, resolve
    except ImportError:  # the constitution package is optional for assessment
        return None
    return resolve(load_constitution(constitution), context)
