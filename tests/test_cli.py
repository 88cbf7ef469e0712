from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from cai2 import cli
from cai2.errors import ConfigError, DataError


@pytest.fixture
def failing_command() -> typer.Typer:
    """Adds a hidden command that raises what the test asks for."""
    state: dict[str, BaseException] = {}

    @cli.app.command("_raise", hidden=True)
    def _raise() -> None:
        raise state["exc"]

    cli.app.state = state  # type: ignore[attr-defined]
    yield cli.app
    cli.app.registered_commands = [c for c in cli.app.registered_commands if c.name != "_raise"]


@pytest.mark.parametrize(
    ("exc", "code", "text"),
    [
        (ConfigError("bad value", file="r.yaml", line=3, key="a.b"), 2, "r.yaml:3 at `a.b`"),
        (DataError("no prompts"), 2, "no prompts"),
        (RuntimeError("boom"), 1, "internal error: RuntimeError: boom"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_exit_codes_and_one_line_errors(
    failing_command: typer.Typer,
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    code: int,
    text: str,
) -> None:
    failing_command.state["exc"] = exc  # type: ignore[attr-defined]
    assert cli.main(["_raise"]) == code
    err = capsys.readouterr().err
    assert text in err
    assert "Traceback" not in err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["no-such-command"]) == 2


def test_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cai2.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "Constitutional AI 2.0" in out
