from __future__ import annotations

import json
from pathlib import Path

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
            "honest.accuracy",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert "saved" in result.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert [p["principle"] for p in meta["principles"]] == [CRIME, "honest.accuracy"]

    result = runner.invoke(APP, ["embed", "eval", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [p["principle"] for p in report["principles"]] == [CRIME, "honest.accuracy"]
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


def test_bad_input_exits_2(tmp_path: Path) -> None:
    from cai2.cli import main

    assert main(["embed", "train", "--model", "hf:tiny", "--method", "cosine"]) == 2
    assert main(["embed", "eval", str(tmp_path / "missing.npz")]) == 2


def test_default_path_keeps_the_constitution_version() -> None:
    from cai2.embeddings._cli import default_embeddings_path

    assert default_embeddings_path("cai-2.0", "hf:tiny").name == "cai-2.0-hf-tiny.npz"
    assert default_embeddings_path("a/acme.yaml", "hf:tiny").name == "acme-hf-tiny.npz"
