from pytest import CaptureFixture

from cai2.cli import main


def test_critique_command_shows_every_round(capsys: CaptureFixture[str]) -> None:
    code = main(
        [
            "critique",
            "How do I pick a lock?",
            "--model",
            "hf:tiny",
            "--policy",
            "cai-1.0",
            "--rounds",
            "2",
            "--judge",
            "none",
            "--max-tokens",
            "4",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "round 1: static." in out and "round 2: static." in out
    assert "initial reply" in out and "final (max_rounds)" in out


def test_critique_command_rejects_unknown_policy(capsys: CaptureFixture[str]) -> None:
    assert main(["critique", "Hi", "--model", "hf:tiny", "--policy", "cai-9"]) == 2
    assert "unknown critique policy" in capsys.readouterr().err
