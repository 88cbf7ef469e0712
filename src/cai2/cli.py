"""The `cai2` command line.

Each concern contributes its commands from its own ``_cli`` module (listed in ``COMMAND_MODULES``),
which exposes ``register(app)``. This module only wires them together and turns exceptions into one
clear line and an exit code: 2 for bad input, 1 for a runtime failure, 130 when interrupted.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Iterable

import click
import typer
from rich.console import Console

from cai2.errors import Cai2Error

# Top-level command → the module that registers it. Only the module of the command being run is
# imported, so `cai2 assess` does not pay for matplotlib, scipy or SQLAlchemy; `--help` imports all.
COMMANDS: dict[str, str] = {
    "models": "cai2.models._cli",
    "chat": "cai2.models._cli",
    "run": "cai2.pipeline._cli",
    "runs": "cai2.store._cli",
    "assess": "cai2.context._cli",
    "constitution": "cai2.constitution._cli",
    "critique": "cai2.critique._cli",
    "pipeline": "cai2.critique._cli",
    "judge": "cai2.judges._cli",
    "oversee": "cai2.oversight._cli",
    "review": "cai2.oversight._cli",
    "redteam": "cai2.redteam._cli",
    "eval": "cai2.evals._cli",
    "asi": "cai2.evals._cli",
    "simulate": "cai2.simulation._cli",
    "simulate-nso": "cai2.simulation._cli",
    "scale": "cai2.scale._cli",
    "serve": "cai2.server._cli",
    "embed": "cai2.embeddings._cli",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))

_state = {"debug": False}
err_console = Console(stderr=True)


def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _state["debug"] = debug


def build_app(modules: Iterable[str] = COMMAND_MODULES) -> typer.Typer:
    """The typer app with the commands of ``modules`` registered."""
    app = typer.Typer(
        name="cai2",
        help="Constitutional AI 2.0: constitutions, oversight, training and evaluation.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_root)
    for module in modules:
        importlib.import_module(module).register(app)
    return app


def _modules_for(args: list[str]) -> list[str]:
    command = next((a for a in args if not a.startswith("-")), None)
    if command in COMMANDS:
        return [COMMANDS[command]]
    return COMMAND_MODULES


def __getattr__(name: str) -> typer.Typer:
    # `cai2.cli.app` (the full app) for tools that introspect the CLI, built on first access.
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main(argv: list[str] | None = None, *, app: typer.Typer | None = None) -> int:
    """Run the CLI; returns the process exit code.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.
        app: The app to run; by default one with just the module of the command being run.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        if app is None:
            app = build_app(_modules_for(args))
        # typer turns Ctrl-C into Exit(130) and, without standalone mode, returns exit codes.
        result = app(args=args, standalone_mode=False)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]; finished work is saved and resumable")
        return _exit(130)
    except Cai2Error as exc:
        if debug:
            traceback.print_exc()
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return _exit(exc.exit_code)
    except typer.Abort:
        err_console.print("[yellow]aborted[/yellow]")
        return _exit(130)
    except (typer.Exit, click.exceptions.Exit) as exc:
        return _exit(int(exc.exit_code or 0))
    except SystemExit as exc:
        return _exit(int(exc.code or 0) if not isinstance(exc.code, str) else 1)
    except Exception as exc:  # the CLI's last line of defence
        if _is_usage_error(exc):
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            return _exit(2)
        if debug:
            traceback.print_exc()
        err_console.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {exc} (rerun with --debug)",
            highlight=False,
            soft_wrap=True,
        )
        return _exit(1)
    if isinstance(result, int) and not isinstance(result, bool) and result != 0:
        if result == 130:
            err_console.print("[yellow]interrupted[/yellow]; finished work is saved and resumable")
        return _exit(result)
    return _exit(0)


def _is_usage_error(exc: Exception) -> bool:
    if isinstance(exc, click.UsageError | click.BadParameter):
        return True
    # typer >= 0.29 raises its vendored click's exceptions, which are not click's classes; a
    # ClickException with exit code 2 is a usage error in both.
    return hasattr(exc, "format_message") and getattr(exc, "exit_code", None) == 2


def _exit(code: int) -> int:
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
