from pathlib import Path

import yaml
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


def test_pipeline_sl_command_trains_and_prints_the_metrics(
    tmp_path: Path, capsys: CaptureFixture[str]
) -> None:
    args = [
        "pipeline",
        "sl",
        "--model",
        "hf:tiny",
        "--limit",
        "1",
        "--policy",
        "cai-1.0",
        "--rounds",
        "1",
        "--judge",
        "none",
        "--max-tokens",
        "4",
        "--max-steps",
        "1",
        "--unrevised-repeats",
        "3",
        "--runs-dir",
        str(tmp_path),
        "--run-id",
        "sl-cli",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "critique_prompts: 2" in out and "sft_steps: 1" in out
    config = yaml.safe_load((tmp_path / "sl-cli" / "config.yaml").read_text())
    assert config["stages"][0]["config"]["unrevised_repeats"] == 3
    assert f"model_out: hf:{tmp_path / 'sl-cli' / 'artifacts' / 'sl' / 'model'}" in out
    assert "run directory:" in out


def test_pipeline_rl_command_trains_on_pairs(tmp_path: Path, capsys: CaptureFixture[str]) -> None:
    oversight = tmp_path / "oversight.yaml"
    oversight.write_text("levels:\n  - name: triage\n    judge: refusal\n")
    args = [
        "pipeline",
        "rl",
        "--model",
        "hf:tiny",
        "--prompts",
        "helpful",
        "--limit",
        "2",
        "--oversight",
        str(oversight),
        "--samples",
        "2",
        "--min-margin",
        "0.0",
        "--max-tokens",
        "4",
        "--max-steps",
        "1",
        "--runs-dir",
        str(tmp_path),
        "--run-id",
        "rl-cli",
    ]
    code = main(args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "prompts: 2" in out and "replies: 4" in out and "run directory:" in out


def test_pipeline_rl_command_trains_online_with_grpo(
    tmp_path: Path, capsys: CaptureFixture[str]
) -> None:
    oversight = tmp_path / "oversight.yaml"
    oversight.write_text("levels:\n  - name: triage\n    judge: refusal\n")
    args = ["pipeline", "rl", "--model", "hf:tiny", "--prompts", "helpful", "--limit", "2"]
    args += ["--oversight", str(oversight), "--samples", "2", "--max-tokens", "4"]
    args += ["--max-steps", "1", "--method", "grpo", "--runs-dir", str(tmp_path)]
    code = main([*args, "--run-id", "grpo-cli"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "grpo_steps: 1" in out and "run directory:" in out
