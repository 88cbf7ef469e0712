"""`cai2 serve` runs the oversight service; `add-key`, `revoke-key` and `add-user` manage access."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cai2.errors import DataError
from cai2.server._db import ServiceDB
from cai2.server._settings import ServeSettings

console = Console()

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Service settings YAML (see docs/service.md).")
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL (default: STATE_DIR/serve.sqlite)."),
]
StateOption = Annotated[
    Path | None, typer.Option("--state-dir", help="Folder for the SQLite file.")
]

serve_app = typer.Typer(
    help="The oversight service: a guarded OpenAI-compatible endpoint and the review web UI.",
    no_args_is_help=False,
)


def _settings(
    config: Path | None, database_url: str | None, state_dir: Path | None, **extra: object
) -> ServeSettings:
    settings = ServeSettings.from_yaml(config) if config is not None else ServeSettings()
    updates = {k: v for k, v in extra.items() if v is not None}
    if database_url is not None:
        updates["database_url"] = database_url
    if state_dir is not None:
        updates["state_dir"] = state_dir
    return settings.model_copy(update=updates) if updates else settings


def _db(config: Path | None, database_url: str | None, state_dir: Path | None) -> ServiceDB:

    settings = _settings(config, database_url, state_dir)
    if settings.database_url is None:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    return ServiceDB(settings.url())


@serve_app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    config: ConfigOption = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Backend spec, e.g. hf:tiny, hf:smollm2-135m.")
    ] = None,
    assessor: Annotated[
        str | None, typer.Option("--assessor", help="`minilm` (default) or `rules`.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database_url: DatabaseOption = None,
    state_dir: StateOption = None,
) -> None:
    """Run the service (without a sub-command)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from cai2.server._app import create_app

    settings = _settings(config, database_url, state_dir, model=model, assessor=assessor)
    settings = ServeSettings.model_validate(settings.model_dump())
    console.print(f"loading {settings.model} and the guard …")
    app = create_app(settings)
    console.print(
        f"serving [bold]{settings.model_name}[/bold] on http://{host}:{port}/v1 "
        f"(review UI: http://{host}:{port}/ui/)"
    )
    uvicorn.run(app, host=host, port=port, log_level="info")


@serve_app.command("add-key")
def add_key(
    name: Annotated[str, typer.Argument(help="Client name the key belongs to.")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    state_dir: StateOption = None,
) -> None:
    """Create an API key for a client; it is printed once and stored only as a hash."""
    db = _db(config, database_url, state_dir)
    try:
        key = db.create_api_key(name)
    finally:
        db.close()
    print(key)


@serve_app.command("revoke-key")
def revoke_key(
    name: Annotated[str, typer.Argument(help="Client name whose key to revoke.")],
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    state_dir: StateOption = None,
) -> None:
    """Revoke a client's API key."""
    db = _db(config, database_url, state_dir)
    try:
        db.revoke_api_key(name)
    finally:
        db.close()
    console.print(f"key of `{name}` revoked")


@serve_app.command("add-user")
def add_user(
    username: Annotated[str, typer.Argument(help="Reviewer login name.")],
    role: Annotated[str, typer.Option(help="`reviewer` or `admin`.")] = "reviewer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    config: ConfigOption = None,
    database_url: DatabaseOption = None,
    state_dir: StateOption = None,
) -> None:
    """Add a reviewer account (the password is asked for, or read from stdin; stored hashed)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise DataError("the two passwords differ")
    db = _db(config, database_url, state_dir)
    try:
        user = db.create_user(username, password, role)
    finally:
        db.close()
    console.print(f"user `{user.username}` ({user.role}) added")


def register(app: typer.Typer) -> None:
    """Add `cai2 serve` to the cai2 app."""
    app.add_typer(serve_app, name="serve")
