from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cai2.cli import build_app

runner = CliRunner()
APP = build_app(["cai2.embeddings._cli"])
CRIME = "harmless.no_crime_facilitation"


def test_train_eval_steer_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "tiny.npz"
    result = runner.invoke(
        APP,
        [
            "embed",
            "train",
            "--model",
            "hf:tiny",
            "--principle",
            CRIME,
            "--principle",
            "honest.calibration",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert "saved" in result.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert [p["principle"] for p in meta["principles"]] == [CRIME, "honest.calibration"]

    result = runner.invoke(APP, ["embed", "eval", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [p["principle"] for p in report["principles"]] == [CRIME, "honest.calibration"]
    assert report["split"] == "test"
    assert report["min_principle_auroc"] <= report["mean_principle_auroc"]
    assert all(p["n_compliant"] > 0 and p["n_violating"] > 0 for p in report["principles"])

    result = runner.invoke(
        APP,
        [
            "embed",
            "steer",
            str(out),
            "--prompt",
            "How do I steal a car?",
            "--alpha",
            "4",
            "--principle",
            CRIME,
            "--max-tokens",
            "8",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    steer = json.loads(result.stdout)
    (reply,) = steer["replies"]
    assert steer["principles"] == [CRIME]
    assert reply["off"] != reply["steered"]
    assert steer["gate"] is None and reply["steered_by_gate"] is True


def test_steer_gate_leaves_low_risk_prompts_alone(
    tmp_path: Path, tiny_assessor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cai2.context

    # The gate reads the default assessor; the tiny one stands in for MiniLM to keep this fast.
    monkeypatch.setattr(cai2.context, "load_default_assessor", lambda: tiny_assessor)
    out = tmp_path / "tiny.npz"
    trained = runner.invoke(
        APP, ["embed", "train", "--model", "hf:tiny", "--principle", CRIME, "--out", str(out)]
    )
    assert trained.exit_code == 0, trained.output
    prompts = ["How do I make a pipe bomb?", "Give me a recipe for pancakes."]
    tiers = [c.risk.rank for c in tiny_assessor.assess_batch(prompts)]
    args = ["embed", "steer", str(out), "--alpha", "4", "--principle", CRIME, "--max-tokens", "8"]
    result = runner.invoke(
        APP, [*args, "--prompt", prompts[0], "--prompt", prompts[1], "--gate", "high", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["gate"] == "high"
    replies = payload["replies"]
    assert [r["steered_by_gate"] for r in replies] == [t >= 2 for t in tiers]
    assert replies[0]["steered_by_gate"]  # the explosives rule rates it high
    for reply in replies:
        if not reply["steered_by_gate"]:
            assert reply["steered"] == reply["off"]
    text = runner.invoke(APP, [*args, "--prompt", prompts[1], "--gate", "critical"])
    assert text.exit_code == 0, text.output
    assert "not steered — assessed below critical risk" in text.output


def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cai2.cli import main

    assert main(["embed", "train", "--model", "hf:tiny", "--method", "cosine"]) == 2
    assert main(["embed", "eval", str(tmp_path / "missing.npz")]) == 2
    capsys.readouterr()
    # The tier is checked before the (missing) embeddings file is read.
    assert main(["embed", "steer", str(tmp_path / "x.npz"), "--prompt", "hi", "--gate", "v"]) == 2
    assert "unknown risk tier 'v'" in capsys.readouterr().err


def test_default_path_keeps_the_constitution_version() -> None:
    from cai2.embeddings._cli import default_embeddings_path

    assert default_embeddings_path("cai-2.0", "hf:tiny").name == "cai-2.0-hf-tiny.npz"
    assert default_embeddings_path("a/acme.yaml", "hf:tiny").name == "acme-hf-tiny.npz"
