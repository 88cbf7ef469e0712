"""The `cai2` command line.

Each concern contributes its commands from its own ``_cli`` module (listed in ``COMMAND_MODULES``),
which exposes ``register(app)``. This module only wires them together and turns exceptions into one
clear line and an exit code: 2 for bad input, 1 for a runtime failure, 130 when interrupted.
"""

from __future__ import annotations

import importlib
import sys
import traceback

import click
import typer
from rich.console import Console

from cai2.errors import Cai2Error

COMMAND_MODULES = [
    "cai2.models._cli",
    "cai2.store._cli",
    "cai2.pipeline._cli",
]

app = typer.Typer(
    name="cai2",
    help="Constitutional AI 2.0: constitutions, oversight, training and evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_state = {"debug": False}
err_console = Console(stderr=True)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _state["debug"] = debug


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the process exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, standalone_mode=False)
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
    except Exception as exc:  # noqa: BLE001 - last line of defence for the CLI
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
    return _exit(0)


def _is_usage_error(exc: Exception) -> bool:
    return isinstance(exc, click.UsageError | click.BadParameter)


def _exit(code: int) -> int:
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
