from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from cai2 import cli
from cai2.errors import ConfigError, DataError


@pytest.fixture
def failing_command() -> typer.Typer:
    """An app with one command that raises what the test asks for."""
    state: dict[str, BaseException] = {}
    app = cli.build_app([])

    @app.command("_raise")
    def _raise() -> None:
        raise state["exc"]

    @app.command("_other")
    def _other() -> None:
        """A second command, so `_raise` stays a subcommand."""

    app.state = state  # type: ignore[attr-defined]
    return app


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
    assert cli.main(["_raise"], app=failing_command) == code
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


def test_command_map_matches_what_modules_register() -> None:
    """Every module registers exactly the top-level commands COMMANDS maps to it."""
    for module in cli.COMMAND_MODULES:
        app = cli.build_app([module])
        names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
        expected = {name for name, owner in cli.COMMANDS.items() if owner == module}
        assert names == expected, module


def test_running_one_command_imports_only_its_module() -> None:
    code = (
        "import sys; from cai2 import cli; cli.main(['constitution', 'validate', 'cai-1.0']); "
        "print(sorted(m for m in sys.modules if m.startswith('cai2.') and m.endswith('_cli')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "cai2.constitution._cli" in out
    assert "cai2.simulation._cli" not in out
    assert "cai2.oversight._cli" not in out
