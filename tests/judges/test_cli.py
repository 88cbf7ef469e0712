from __future__ import annotations

import json
from pathlib import Path

import pytest

from cai2.cli import main


def test_calibrate_refusal_on_heldout_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["judge", "calibrate", "--judge", "refusal", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "pyrit:objective:heldout"
    assert report["n"] == 118 and report["n_judged"] == 118
    assert 0.0 <= report["accuracy"] <= 1.0 and -1.0 <= report["kappa"] <= 1.0


def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["judge", "calibrate", "--judge", "nope"]) == 2
    assert "unknown judge `nope`" in capsys.readouterr().err
    assert main(["judge", "calibrate", "--judge", "refusal", "--split", "all"]) == 2
    assert main(["judge", "calibrate", "--judge", "refusal", "--model", "hf:tiny"]) == 2
    assert main(["judge", "train", "--judge", "refusal"]) == 2


@pytest.mark.slow  # encodes the 222 replies of the fit split with MiniLM (minutes on a busy CPU)
def test_train_then_calibrate_embedding_head(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "head.npz"
    assert (
        main(["judge", "train", "--judge", "embedding-head", "--extra", "none", "--out", str(path)])
        == 0
    )
    assert path.exists()
    capsys.readouterr()
    args = [
        "judge",
        "calibrate",
        "--judge",
        "embedding-head",
        "--path",
        str(path),
        "--split",
        "calibration",
        "--json",
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["judge"] == "embedding-head" and report["n"] == 55
    assert report["accuracy"] > 0.6  # far above the 0.5 of a coin
