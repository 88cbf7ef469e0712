"""`cai2 models` (what is installed and cached) and `cai2 chat` (talk to any model spec)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from cai2.errors import Cai2Error
from cai2.models._backends import BACKENDS, DEFAULT_CHAT_SPEC, DEFAULT_GENERATION_SPEC, load_model
from cai2.models._embedded import (
    EXPECTED_GGUF_SHA256,
    check_converted_dir,
    embedded_gguf_path,
    embedded_model_dir,
    models_cache_dir,
    read_manifest,
    tiny_model_dir,
)
from cai2.models._hf import DEFAULT_HF_BATCH_SIZE
from cai2.models._types import Conversation, GenerationParams
from cai2.packages import sha256_file

console = Console(soft_wrap=True)
err_console = Console(stderr=True)

EXAMPLE_SPECS = {
    "hf": "hf:smollm2-135m · hf:tiny · hf:/path/to/saved/model",
    "llamacpp": "llamacpp:smollm2-135m · llamacpp:/path/model.gguf",
    "openai": "openai:http://127.0.0.1:8080/v1#model-name",
}


def register(app: typer.Typer) -> None:
    """Add `models` and `chat` to the cai2 app."""
    app.command("models")(models_command)
    app.command("chat")(chat_command)


def models_command(
    convert: bool = typer.Option(
        False, "--convert", help="Convert the embedded model now (and build the tiny test model)."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Re-hash every file of the converted model against its manifest."
    ),
) -> None:
    """List model backends and show where the embedded model and caches are."""
    table = Table(title="Backends", show_header=True)
    table.add_column("backend")
    table.add_column("specs")
    for name in BACKENDS.names():
        table.add_row(name, EXAMPLE_SPECS.get(name, f"{name}:…"))
    console.print(table)
    console.print(
        f"default generation spec: [bold]{DEFAULT_GENERATION_SPEC}[/bold] "
        f"(batch size {DEFAULT_HF_BATCH_SIZE}); `cai2 chat` default: "
        f"[bold]{DEFAULT_CHAT_SPEC}[/bold]"
    )
    console.print(f"model cache: {models_cache_dir()}")

    gguf = embedded_gguf_path()
    digest = sha256_file(gguf)
    verdict = (
        "[green]matches the pinned value[/green]"
        if digest == EXPECTED_GGUF_SHA256
        else (f"[red]differs from the pinned {EXPECTED_GGUF_SHA256}[/red]")
    )
    console.print(f"embedded GGUF: {gguf}\n  sha256 {digest} {verdict}")
    if convert:
        with err_console.status("converting the embedded model (about a minute, once)…"):
            embedded_model_dir()
            tiny_model_dir()
    converted = embedded_model_dir(convert=False)
    manifest = read_manifest(converted)
    if manifest is None:
        console.print(
            f"converted model: {converted} [yellow]not converted yet[/yellow] "
            f"(run `cai2 models --convert`, or it converts on first use)"
        )
    else:
        with err_console.status("checking the converted model…"):
            problems = check_converted_dir(converted, source_sha256=digest, full=verify)
        state = "[green]ok[/green]" if not problems else "[red]" + "; ".join(problems) + "[/red]"
        console.print(
            f"converted model: {converted} {state}\n"
            f"  converted {manifest.get('converted_at')} with transformers "
            f"{manifest.get('transformers')}{' (all files re-hashed)' if verify else ''}"
        )
        if problems:
            raise Cai2Error(f"the converted model in {converted} is not usable: {problems[0]}")
    tiny = models_cache_dir() / "tiny-smollm2"
    built = "built" if read_manifest(tiny) is not None else "not built yet"
    console.print(f"tiny test model: {tiny} ({built})")


def chat_command(
    message: str | None = typer.Argument(
        None, help="Send one message and print the reply; without it, start an interactive chat."
    ),
    model: str = typer.Option(
        DEFAULT_CHAT_SPEC, "--model", "-m", help="Model spec, e.g. hf:smollm2-135m."
    ),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Most tokens per reply."),
    temperature: float = typer.Option(
        0.0, "--temperature", min=0.0, help="Sampling temperature; 0 is greedy."
    ),
    system: str | None = typer.Option(None, "--system", help="A system message to start with."),
) -> None:
    """Chat with a model: one-shot with MESSAGE, otherwise a REPL (`/exit` or Ctrl-D ends it)."""
    params = GenerationParams(max_tokens=max_tokens, temperature=temperature, seed=0)
    with err_console.status(f"loading {model}…"):
        chat_model = load_model(model)
    history: Conversation = [{"role": "system", "content": system}] if system else []
    if message is not None:
        history.append({"role": "user", "content": message})
        console.print(chat_model.generate([history], params)[0].text, markup=False, highlight=False)
        return
    interactive = sys.stdin.isatty()
    if interactive:
        err_console.print(f"chatting with {model}; `/reset` clears the history, `/exit` ends")
    while True:
        try:
            line = console.input("[bold]you>[/bold] " if interactive else "")
        except EOFError:
            break
        text = line.strip()
        if text == "/exit":
            break
        if text == "/reset":
            history = history[:1] if system else []
            continue
        if not text:
            continue
        history.append({"role": "user", "content": text})
        reply = chat_model.generate([history], params)[0].text
        history.append({"role": "assistant", "content": reply})
        console.print(reply, markup=False, highlight=False)
