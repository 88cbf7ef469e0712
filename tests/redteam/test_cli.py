"""`cai2 redteam` and `cai2 pipeline redteam` on the tiny model, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from pytest import CaptureFixture

from cai2.cli import main


def test_list_strategies(capsys: CaptureFixture[str]) -> None:
    assert main(["redteam", "--list-strategies"]) == 0
    out = capsys.readouterr().out
    assert "many-shot" in out and "refine" in out and "model-driven" in out


def test_redteam_attacks_and_writes_the_report(tmp_path: Path, capsys: CaptureFixture[str]) -> None:
    out_dir = tmp_path / "report"
    args = [
        "redteam",
        "--model",
        "hf:tiny",
        "--seeds",
        "project",
        "--split",
        "train",
        "--limit",
        "2",
        "--strategies",
        "plain,base64",
        "--judge",
        "refusal",
        "--no-context",
        "--max-tokens",
        "4",
        "--out",
        str(out_dir),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "base64" in out and "all" in out and "report.html" in out
    report = json.loads((out_dir / "report.json").read_text())
    assert report["asr"]["n"] == 4 and report["judge"]["judge"] == "refusal"
    assert len((out_dir / "attempts.jsonl").read_text().splitlines()) == 4


def test_redteam_rejects_bad_input(capsys: CaptureFixture[str]) -> None:
    assert main(["redteam", "--strategies", "nope", "--no-context"]) == 2
    assert "unknown attack strategy `nope`" in capsys.readouterr().err
    assert main(["redteam", "--seeds", "hub", "--no-context"]) == 2
    assert "unknown seed source `hub`" in capsys.readouterr().err


def test_pipeline_redteam_runs_a_round(tmp_path: Path, capsys: CaptureFixture[str]) -> None:
    args = [
        "pipeline",
        "redteam",
        "--model",
        "hf:tiny",
        "--rounds",
        "1",
        "--seeds-per-round",
        "2",
        "--strategies",
        "plain",
        "--judge",
        "refusal",
        "--max-steps",
        "1",
        "--max-tokens",
        "4",
        "--no-context",
        "--runs-dir",
        str(tmp_path),
        "--run-id",
        "rt",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "round1_failures: 2" in out and "final_model: hf:" in out
    assert (tmp_path / "rt" / "artifacts" / "redteam" / "round-1" / "done.json").exists()
