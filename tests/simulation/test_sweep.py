"""Sweeps across orders of magnitude, the failure-mode study and the empirical mode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cai2.config import YamlDocument
from cai2.errors import ConfigError, DataError
from cai2.simulation import (
    EmpiricalGuardConfig,
    FailureStudyConfig,
    MeasuredJudge,
    ProtocolEntry,
    SweepConfig,
    elo_from_win_probability,
    elo_win_probability,
    fit_guard_curve,
    load_empirical_config,
    run_sweep,
)


def _small(**overrides: object) -> SweepConfig:
    data: dict[str, object] = {
        "points": 7,
        "elo_per_order": [200.0],
        "trials": 2_000,
        "failure_study": {"compromise_probabilities": [0.0, 0.2], "correlations": [0.0, 0.5]},
    }
    data.update(overrides)
    return SweepConfig.model_validate(data)


def test_sweep_shapes_and_monte_carlo_agreement() -> None:
    config = _small()
    calls: list[tuple[int, int]] = []
    result = run_sweep(config, progress=lambda done, total: calls.append((done, total)))
    assert len(result.curves) == len(config.protocols)
    for curve in result.curves:
        assert curve.success.shape == (7,)
        assert np.all((curve.success >= 0) & (curve.success <= 1))
        assert np.all(curve.mc_low <= curve.mc_success) and np.all(
            curve.mc_success <= curve.mc_high
        )
    check = result.mc_check()
    assert check["comparisons"] == 7 * len(config.protocols)
    # With a correct Monte Carlo about 1% fall outside; more than a handful would be a bug.
    assert check["within_99"] >= check["comparisons"] - 3
    assert calls[-1][0] == calls[-1][1] == len(config.protocols) + 2 * 3


def test_sweep_is_reproducible_and_seeded() -> None:
    first = json.dumps(run_sweep(_small(failure_study=None)).to_json())
    again = json.dumps(run_sweep(_small(failure_study=None)).to_json())
    other = json.dumps(run_sweep(_small(failure_study=None, seed=1)).to_json())
    assert first == again
    assert first != other


def test_direct_review_decays_with_scale_and_optimal_hierarchy_dominates_fixed() -> None:
    result = run_sweep(_small(trials=0, failure_study=None))
    by_label = {curve.label: curve for curve in result.curves}
    direct = by_label["direct human review"].success
    assert np.all(np.diff(direct) < 0)
    fixed = by_label["hierarchy (depth 4)"].success
    optimal = by_label["hierarchy (optimal depth)"].success
    assert np.all(optimal >= fixed - 1e-12)
    assert np.all(by_label["hierarchy (optimal depth)"].depth >= 1)
    assert result.mc_check()["comparisons"] == 0


def test_claim_check_reports_orders_kept() -> None:
    result = run_sweep(_small(trials=0, failure_study=None, success_target=0.5))
    rows = {row["label"]: row for row in result.claim_check()}
    # Direct review at κ = 200 with the default 400-Elo guard advantage: 50% at a 400 Elo gap,
    # i.e. 2 orders of magnitude; the grid has points at 0, 1, 2, ... orders.
    assert rows["direct human review"]["orders_kept"] == pytest.approx(2.0)
    assert rows["debate"]["orders_kept"] == pytest.approx(6.0)


def test_failure_study_checkpoints_reduce_top_error() -> None:
    study = FailureStudyConfig(
        orders=2.0, elo_per_order=100.0, depth=4, compromise_probabilities=[0.0, 0.3]
    )
    result = run_sweep(_small(trials=500, failure_study=study.model_dump()))
    assert result.failure_study is not None
    cells = {
        (cell["correlation"], cell["checkpoint_every"]): cell
        for cell in result.failure_study["cells"]
    }
    for rho in (0.0, 0.5):
        none, every = cells[(rho, None)], cells[(rho, 1)]
        assert every["human_effort"] > none["human_effort"]
        assert all(a <= b for a, b in zip(every["top_error"], none["top_error"], strict=True))
        # Compromise makes the top worse relative to the bottom.
        assert none["amplification"][1] > none["amplification"][0]


def test_protocol_entries_validate_with_location() -> None:
    doc = YamlDocument(
        "points: 5\nprotocols:\n  - protocol: hierarchy\n    params: {spot_check_rate: 3}\n",
        file="sweep.yaml",
    )
    with pytest.raises(ConfigError) as info:
        doc.validate(SweepConfig)
    assert "sweep.yaml:3" in str(info.value)
    assert "spot_check_rate" in str(info.value)
    with pytest.raises(ValueError, match="orders_max"):
        SweepConfig(orders_min=3.0, orders_max=2.0)
    assert ProtocolEntry(protocol="debate").display_label == "debate"


def _judges(slope: float, intercept: float) -> list[MeasuredJudge]:
    judges = []
    for order in (0.0, 1.0, 2.0, 3.0):
        accuracy = float(elo_win_probability(intercept + slope * order, 0.0))
        judges.append(
            MeasuredJudge(
                name=f"judge-{order:g}", accuracy=accuracy, examples=400, log10_compute=20 + order
            )
        )
    return judges


def test_guard_fit_recovers_a_known_line() -> None:
    fit = fit_guard_curve(_judges(slope=80.0, intercept=150.0))
    assert fit.slope_per_order == pytest.approx(80.0)
    assert fit.intercept == pytest.approx(150.0)
    assert fit.reference_log10_compute == 20.0
    assert fit.slope_stderr > 0.0
    game = fit.game(elo_per_order=200.0, human_general_elo=0.0, houdini_slope=1.0)
    # Two orders up, the Guard has gained 160 Elo and the Houdini 400.
    assert float(game.guard.domain_elo(400.0)) == pytest.approx(150.0 + 160.0)
    assert float(game.houdini.domain_elo(400.0)) == pytest.approx(400.0)


def test_guard_fit_uses_chinchilla_compute_for_parameter_counts() -> None:
    judge = MeasuredJudge(name="135M", accuracy=0.7, examples=100, parameters=135e6)
    assert judge.compute_log10 == pytest.approx(np.log10(120 * 135e6**2))
    with pytest.raises(ValueError, match="exactly one"):
        MeasuredJudge(name="x", accuracy=0.7, examples=10)


def test_guard_fit_needs_two_sizes() -> None:
    same = [
        MeasuredJudge(name="a", accuracy=0.7, examples=100, parameters=1e8),
        MeasuredJudge(name="b", accuracy=0.8, examples=100, parameters=1e8),
    ]
    with pytest.raises(DataError, match="two different sizes"):
        fit_guard_curve(same)


def test_empirical_mode_changes_the_sweep() -> None:
    start_elo = float(elo_from_win_probability(0.9))
    empirical = EmpiricalGuardConfig(judges=_judges(slope=300.0, intercept=start_elo))
    assumed = run_sweep(_small(trials=0, failure_study=None))
    measured = run_sweep(_small(trials=0, failure_study=None, empirical=empirical.model_dump()))
    assert measured.guard_fit is not None
    assert measured.to_json()["guard_fit"]["slope_per_order"] == pytest.approx(300.0)
    # The smallest judge is the trusted overseer: direct review pits it, unchanged, against a
    # Houdini gaining κ = 200 domain Elo per order.
    orders = measured.orders
    expected_direct = elo_win_probability(start_elo, 200.0 * orders)
    np.testing.assert_allclose(measured.curves[0].success, expected_direct, rtol=1e-9)
    # AI overseers gain 300 Elo per order against the Houdini's 200, so the optimal hierarchy
    # does better at scale than under the assumed parallel curves.
    optimal = {curve.label: curve for curve in measured.curves}["hierarchy (optimal depth)"]
    optimal_assumed = {curve.label: curve for curve in assumed.curves}["hierarchy (optimal depth)"]
    assert optimal.success[-1] > optimal_assumed.success[-1]


def test_empirical_judges_can_come_from_calibration_reports(tmp_path: Path) -> None:
    from cai2.judges import CalibrationReport  # the report `cai2 judge calibrate --out` writes

    for name, accuracy, judged in (("small-head", 0.66, 119), ("large-head", 0.78, 118)):
        CalibrationReport(
            judge=name,
            dataset="pyrit:objective:heldout",
            n=119,
            n_judged=judged,
            threshold=0.5,
            accuracy=accuracy,
            kappa=0.3,
            auroc=0.7,
            ece=0.05,
            brier=0.2,
            sensitivity=0.6,
            specificity=0.7,
            prevalence=0.5,
            confusion={"tp": 1, "fp": 1, "tn": 1, "fn": 1},
        ).to_json(tmp_path / "reports" / f"{name}.json")
    judges = tmp_path / "judges.yaml"
    judges.write_text(
        "judges:\n"
        "  - {report: reports/small-head.json, parameters: 1.35e8}\n"
        "  - {report: reports/large-head.json, parameters: 1.35e9, name: renamed}\n",
        encoding="utf-8",
    )
    config = load_empirical_config(judges)
    small, large = config.judges
    assert (small.name, small.accuracy, small.examples) == ("small-head", 0.66, 119)
    assert (large.name, large.accuracy, large.examples) == ("renamed", 0.78, 118)
    fit = fit_guard_curve(config.judges)
    expected = (elo_from_win_probability(0.78) - elo_from_win_probability(0.66)) / 2.0
    assert fit.slope_per_order == pytest.approx(float(expected))


def test_missing_calibration_report_is_located(tmp_path: Path) -> None:
    judges = tmp_path / "judges.yaml"
    judges.write_text(
        "judges:\n  - {report: nope.json, parameters: 1.0e8}\n  - {name: b, accuracy: 0.7, "
        "examples: 10, parameters: 1.0e9}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_empirical_config(judges)
    assert "judges.yaml:2" in str(info.value)
    assert "nope.json" in str(info.value)
