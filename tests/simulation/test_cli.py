"""`cai2 simulate` and `cai2 simulate-nso` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cai2.cli import main
from cai2.simulation import elo_win_probability

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_simulate_writes_results_plots_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "run"
    sweep = ["--points", "5", "--trials", "300", "--kappa", "200", "--kappa", "100"]
    failures = ["--q", "0.1", "--rho", "0.3", "--checkpoint-every", "3"]
    code = main(["simulate", "--out", str(out), *sweep, *failures])
    assert code == 0
    for name in ("success", "human_effort", "optimal_depth", "failure_modes"):
        assert (out / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
    results = json.loads((out / "results.json").read_text())
    assert results["orders"] == [0.0, 1.5, 3.0, 4.5, 6.0]
    assert results["config"]["elo_per_order"] == [200.0, 100.0]
    assert results["config"]["failure"]["compromise_probability"] == 0.1
    assert results["config"]["failure"]["correlation"] == 0.3
    hierarchies = [e for e in results["config"]["protocols"] if e["protocol"] == "hierarchy"]
    assert all(entry["params"]["checkpoint_every"] == 3 for entry in hierarchies)
    protocols = len(results["config"]["protocols"])
    assert len(results["curves"]) == 2 * protocols
    curve = results["curves"][0]
    for key in ("success", "mc_success", "mc_low_95", "mc_high_95", "depth", "human_effort"):
        assert len(curve[key]) == 5
    assert results["mc_check"]["comparisons"] == 2 * protocols * 5
    assert results["engels_reference"]["max_abs_err_pp"] < 0.5
    assert results["failure_study"]["cells"]
    assert {row["label"] for row in results["claim_check"]} >= {"debate", "direct human review"}
    summary = (out / "summary.md").read_text()
    assert "Engels et al. (2025) reference points" in summary
    assert "![success](success.png)" in summary


def test_simulate_reads_a_yaml_config(tmp_path: Path) -> None:
    config = tmp_path / "sweep.yaml"
    config.write_text(
        "points: 3\n"
        "orders_max: 3\n"
        "trials: 0\n"
        "elo_per_order: [300]\n"
        "failure_study: null\n"
        "protocols:\n"
        "  - protocol: direct_human_review\n"
        "  - protocol: hierarchy\n"
        "    label: deep\n"
        "    params: {depth: 8}\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    assert main(["simulate", "--config", str(config), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [curve["label"] for curve in results["curves"]] == ["direct_human_review", "deep"]
    assert results["curves"][1]["depth"] == [8, 8, 8]
    assert results["mc_check"]["comparisons"] == 0
    assert not (out / "failure_modes.png").exists()
    # Direct review at 3 orders × 300 Elo against the default 400-Elo guard advantage.
    assert results["curves"][0]["success"][-1] == pytest.approx(
        float(elo_win_probability(400.0, 900.0))
    )


def test_simulate_reports_bad_config_with_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("points: 3\nfailure:\n  correlashun: 0.2\n", encoding="utf-8")
    assert main(["simulate", "--config", str(config), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert "bad.yaml:3" in error and "correlashun" in error
    assert main(["simulate", "--rho", "0.99", "--out", str(tmp_path / "y")]) == 2
    assert "failure.correlation" in capsys.readouterr().err


def test_simulate_empirical_mode(tmp_path: Path) -> None:
    judges = tmp_path / "judges.yaml"
    judges.write_text(
        "judges:\n"
        "  - {name: small, parameters: 1.35e8, accuracy: 0.62, examples: 400}\n"
        "  - {name: large, parameters: 1.35e9, accuracy: 0.74, examples: 400}\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    options = ["--points", "3", "--trials", "0", "--no-failure-study"]
    code = main(["simulate", "--judges", str(judges), "--out", str(out), *options])
    assert code == 0
    fit = json.loads((out / "results.json").read_text())["guard_fit"]
    # Ten times the parameters is a hundred times the Chinchilla compute: two orders of magnitude.
    rise = 400 * (math.log10(0.74 / 0.26) - math.log10(0.62 / 0.38))
    assert fit["slope_per_order"] == pytest.approx(rise / 2)


def test_simulate_nso_prints_reference_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate-nso"]) == 0
    text = capsys.readouterr().out
    assert "90.61%" in text and "0.32%" in text and "24.03%" in text
    code = main(["simulate-nso", "--general-gap", "400", "--domain-gap", "200", "--max-steps", "5"])
    assert code == 0
    text = capsys.readouterr().out
    assert "25.00% ← optimal" in text
    assert main(["simulate-nso", "--general-gap", "400"]) == 2


def test_simulate_lists_protocols(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--list-protocols"]) == 0
    listed = capsys.readouterr().out.split()
    assert {"debate", "direct_human_review", "hierarchy", "weak_to_strong"} <= set(listed)
