"""Statistics against hand-computed values and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cai2.errors import DataError
from cai2.evals import (
    bootstrap_ci,
    corrected_rate,
    mcnemar,
    proportion,
    rogan_gladen,
    wilson_interval,
)


def test_wilson_interval_matches_hand_computation() -> None:
    # 5 of 10 at 95%: centre 0.5, half-width z·sqrt(0.025 + z²/400)/(1 + z²/10), z = 1.959964.
    z = 1.959963984540054
    half = z * math.sqrt(0.5 * 0.5 / 10 + z * z / 400) / (1 + z * z / 10)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.5 - half, abs=1e-9)
    assert high == pytest.approx(0.5 + half, abs=1e-9)
    assert low == pytest.approx(0.2366, abs=1e-4)


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.1 < high < 0.2
    low, high = wilson_interval(20, 20)
    assert high == 1.0 and 0.8 < low < 0.9
    with pytest.raises(DataError, match="successes"):
        wilson_interval(3, 2)


@given(st.integers(0, 200), st.integers(1, 200))
def test_wilson_contains_the_estimate(successes: int, n: int) -> None:
    successes = min(successes, n)
    low, high = wilson_interval(successes, n)
    assert 0.0 <= low <= successes / n <= high <= 1.0


def test_proportion_rejects_non_binary() -> None:
    assert proportion([1, 0, 1, 1]).estimate == 0.75
    with pytest.raises(DataError, match="0/1"):
        proportion([0, 2])


def test_bootstrap_ci_is_seeded_and_brackets_the_mean() -> None:
    values = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]
    first = bootstrap_ci(values, n_resamples=500, seed=3)
    again = bootstrap_ci(values, n_resamples=500, seed=3)
    assert first == again
    assert first.estimate == pytest.approx(0.7)
    assert first.low < 0.7 < first.high
    constant = bootstrap_ci([2.0] * 8, n_resamples=200)
    assert (constant.low, constant.estimate, constant.high) == (2.0, 2.0, 2.0)
    with pytest.raises(DataError, match="empty"):
        bootstrap_ci([])


def test_rogan_gladen_hand_values() -> None:
    # (0.3 + 0.8 − 1) / (0.9 + 0.8 − 1) = 0.1 / 0.7
    assert rogan_gladen(0.3, 0.9, 0.8) == pytest.approx(1 / 7)
    # A perfect judge changes nothing.
    assert rogan_gladen(0.42, 1.0, 1.0) == pytest.approx(0.42)
    # Below the false-positive floor the estimate is clipped to 0, above sens to 1.
    assert rogan_gladen(0.1, 0.9, 0.8) == 0.0
    assert rogan_gladen(0.95, 0.9, 0.8) == 1.0
    with pytest.raises(DataError, match="no better than chance"):
        rogan_gladen(0.5, 0.5, 0.5)


@given(
    st.floats(0, 1),
    st.floats(0.01, 1),
    st.floats(0.01, 1),
)
def test_rogan_gladen_stays_in_unit_interval(q: float, sens: float, spec: float) -> None:
    if sens + spec <= 1.0:
        with pytest.raises(DataError):
            rogan_gladen(q, sens, spec)
    else:
        assert 0.0 <= rogan_gladen(q, sens, spec) <= 1.0


def test_corrected_rate_uses_calibration_counts() -> None:
    outcomes = [1] * 30 + [0] * 70
    confusion = {"tp": 90, "fn": 10, "tn": 80, "fp": 20}  # sens 0.9, spec 0.8
    result = corrected_rate(outcomes, confusion, n_resamples=2000, seed=1)
    assert result.raw.estimate == pytest.approx(0.3)
    assert result.sensitivity == pytest.approx(0.9)
    assert result.specificity == pytest.approx(0.8)
    assert result.corrected is not None
    assert result.corrected.estimate == pytest.approx(1 / 7)
    assert 0.0 <= result.corrected.low < 1 / 7 < result.corrected.high <= 1.0
    assert result.caveat == ""


def test_corrected_rate_caveats() -> None:
    weak = corrected_rate([1, 0, 1, 0], {"tp": 55, "fn": 45, "tn": 55, "fp": 45}, n_resamples=200)
    assert "small" in weak.caveat and weak.corrected is not None
    useless = corrected_rate([1, 0], {"tp": 4, "fn": 6, "tn": 4, "fp": 6}, n_resamples=200)
    assert useless.corrected is None and "no correction" in useless.caveat
    one_class = corrected_rate([1, 0], {"tp": 4, "fn": 6, "tn": 0, "fp": 0}, n_resamples=200)
    assert one_class.corrected is None
    assert corrected_rate([1, 0], None).corrected is None


def test_mcnemar_exact_hand_value() -> None:
    # 8 pairs only A, 2 only B: two-sided exact p = 2·P(X ≤ 2 | n=10, ½) = 2·56/1024.
    a = [1] * 8 + [0] * 2 + [1] * 5 + [0] * 5
    b = [0] * 8 + [1] * 2 + [1] * 5 + [0] * 5
    result = mcnemar(a, b)
    assert (result.only_a, result.only_b, result.n_discordant) == (8, 2, 10)
    assert result.p_value == pytest.approx(112 / 1024)
    assert mcnemar([1, 0, 1], [1, 0, 1]).p_value == 1.0
    with pytest.raises(DataError, match="paired"):
        mcnemar([1, 0], [1])


@pytest.mark.parametrize(("successes", "n"), [(0, 7), (3, 7), (7, 7), (1, 200), (150, 200)])
def test_the_three_wilson_intervals_agree(successes: int, n: int) -> None:
    from cai2.oversight import wilson_interval as oversight_wilson
    from cai2.simulation import wilson_interval as simulation_wilson

    expected = wilson_interval(successes, n, 0.9)
    assert oversight_wilson(successes, n, 0.9) == pytest.approx(expected, abs=1e-12)
    assert simulation_wilson(successes, n, 0.9) == pytest.approx(expected, abs=1e-12)
    low, high = expected
    assert low <= successes / n <= high
