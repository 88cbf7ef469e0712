"""The NSO model of Engels et al. (2025): Elo formula, double-ReLU curves, reference points."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cai2.errors import ConfigError
from cai2.simulation import (
    EloCurve,
    OversightGame,
    elo_from_win_probability,
    elo_win_probability,
    engels_reference_points,
    nso_general_elos,
    nso_step_win_probabilities,
    nso_success_probability,
    optimal_nso,
)


def test_elo_formula_values() -> None:
    assert elo_win_probability(0, 0) == pytest.approx(0.5)
    # A 400-point edge is 10:1 odds.
    assert elo_win_probability(400, 0) == pytest.approx(10 / 11)
    assert elo_win_probability(0, 400) == pytest.approx(1 / 11)
    # Tiny probabilities stay positive instead of rounding to zero.
    assert 0 < elo_win_probability(0, 10_000) < 1e-20


@given(st.floats(-3000, 3000), st.floats(-3000, 3000))
def test_elo_formula_is_symmetric_and_inverts(a: float, b: float) -> None:
    p = float(elo_win_probability(a, b))
    assert 0.0 <= p <= 1.0
    assert p + float(elo_win_probability(b, a)) == pytest.approx(1.0)
    if 1e-6 < p < 1 - 1e-6:  # beyond this, 1 - p has too few digits left to invert
        assert float(elo_from_win_probability(p)) == pytest.approx(a - b, abs=1e-4)


def test_double_relu_has_two_plateaus() -> None:
    curve = EloCurve(slope=2.0, intercept=10.0, general_min=100.0, general_max=300.0)
    values = curve.domain_elo([0.0, 100.0, 200.0, 300.0, 1000.0])
    np.testing.assert_allclose(values, [210.0, 210.0, 410.0, 610.0, 610.0])


def test_double_relu_rejects_inverted_plateaus() -> None:
    with pytest.raises(ValueError, match="general_min"):
        EloCurve(general_min=5.0, general_max=1.0)


@pytest.mark.parametrize(("general_gap", "domain_gap"), [(2000.0, 1000.0), (400.0, 200.0)])
def test_from_gaps_reproduces_the_gaps(general_gap: float, domain_gap: float) -> None:
    game = OversightGame.from_gaps(general_gap, domain_gap, guard_slope=1.5, houdini_slope=0.5)
    start_guard = float(game.guard.domain_elo(0.0))
    target_houdini = float(game.houdini.domain_elo(general_gap))
    assert target_houdini - start_guard == pytest.approx(domain_gap)


def test_steps_are_evenly_spaced() -> None:
    np.testing.assert_allclose(nso_general_elos(100.0, 500.0, 4), [100, 200, 300, 400, 500])
    with pytest.raises(ConfigError, match="steps"):
        nso_general_elos(0.0, 1.0, 0)


def test_engels_reference_points_within_half_a_percentage_point() -> None:
    points = engels_reference_points()
    assert len(points) == 4
    for point in points:
        assert point.error_pp < 0.5, point
        assert point.computed_steps == point.published_steps
    one_step, optimal, small_one, small_two = points
    assert one_step.success == pytest.approx(0.00315, abs=5e-5)
    assert optimal.success == pytest.approx(0.9061, abs=5e-4)
    assert small_one.success == pytest.approx(0.2403, abs=5e-4)
    assert small_two.success == pytest.approx(0.25, abs=1e-12)


def test_optimal_nso_for_the_small_gap_is_two_steps() -> None:
    game = OversightGame.from_gaps(400.0, 200.0)
    plan = optimal_nso(game, 0.0, 400.0, max_steps=20)
    assert plan.steps == 2
    assert plan.success == pytest.approx(0.25)
    # Beyond the optimum, more steps hurt: each extra game is another chance to lose.
    assert np.all(np.diff(plan.success_by_steps[1:]) < 0)


def test_step_win_probabilities_multiply_to_success() -> None:
    game = OversightGame.from_gaps(2000.0, 1000.0)
    wins = nso_step_win_probabilities(game, 0.0, 2000.0, 11)
    assert wins.shape == (11,)
    # Parallel curves: every step is the same game.
    np.testing.assert_allclose(wins, wins[0])
    assert np.prod(wins) == pytest.approx(nso_success_probability(game, 0.0, 2000.0, 11))


@given(
    st.floats(0.0, 3000.0),
    st.floats(-2000.0, 2000.0),
    st.integers(1, 40),
    st.floats(0.1, 3.0),
    st.floats(0.0, 3.0),
)
def test_success_is_a_probability(
    general_gap: float, domain_gap: float, steps: int, guard_slope: float, houdini_slope: float
) -> None:
    game = OversightGame.from_gaps(
        general_gap, domain_gap, guard_slope=guard_slope, houdini_slope=houdini_slope
    )
    success = nso_success_probability(game, 0.0, general_gap, steps)
    assert 0.0 <= success <= 1.0


def test_bigger_domain_gap_never_helps() -> None:
    successes = [
        optimal_nso(OversightGame.from_gaps(1000.0, gap), 0.0, 1000.0, max_steps=40).success
        for gap in (-500.0, 0.0, 500.0, 1000.0)
    ]
    assert successes == sorted(successes, reverse=True)
