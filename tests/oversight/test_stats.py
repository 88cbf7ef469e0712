from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from cai2.errors import DataError
from cai2.oversight import (
    clopper_pearson_interval,
    effective_sample_size,
    horvitz_thompson_error_rate,
    horvitz_thompson_undetected_rate,
    review_share_for_bound,
    spot_check_bound,
    spot_checks_needed,
    upper_bound,
    wilson_interval,
)

counts = st.integers(min_value=1, max_value=400).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)
confidences = st.sampled_from([0.8, 0.9, 0.95, 0.99])


@settings(max_examples=100, deadline=None)
@given(counts, confidences)
def test_intervals_contain_the_point_estimate(count: tuple[int, int], confidence: float) -> None:
    errors, n = count
    p = errors / n
    for low, high in (
        clopper_pearson_interval(errors, n, confidence),
        wilson_interval(errors, n, confidence),
    ):
        assert 0.0 <= low <= p + 1e-12 and p - 1e-12 <= high <= 1.0
    assert upper_bound(errors, n, confidence) >= p
    assert upper_bound(errors, n, confidence, "wilson") >= p


@settings(max_examples=100, deadline=None)
@given(counts, confidences)
def test_bounds_tighten_with_more_reviews_at_the_same_rate(
    count: tuple[int, int], confidence: float
) -> None:
    errors, n = count
    # Same observed rate, four times the evidence: both intervals must shrink.
    small = clopper_pearson_interval(errors, n, confidence)
    large = clopper_pearson_interval(4 * errors, 4 * n, confidence)
    assert large[1] - large[0] < small[1] - small[0]
    assert upper_bound(4 * errors, 4 * n, confidence) <= upper_bound(errors, n, confidence)
    # More error-free reviews never raise the upper bound.
    assert upper_bound(errors, n + 1, confidence) <= upper_bound(errors, n, confidence)


@settings(max_examples=100, deadline=None)
@given(counts)
def test_a_higher_confidence_gives_a_wider_interval(count: tuple[int, int]) -> None:
    errors, n = count
    for interval in (clopper_pearson_interval, wilson_interval):
        low90, high90 = interval(errors, n, 0.9)
        low99, high99 = interval(errors, n, 0.99)
        assert low99 <= low90 + 1e-12 and high99 >= high90 - 1e-12


def _min_coverage(interval, n: int, ps: np.ndarray, confidence: float) -> float:  # type: ignore[no-untyped-def]
    """Smallest exact coverage over the success probabilities ``ps`` (summed over outcomes)."""
    bounds = [interval(x, n, confidence) for x in range(n + 1)]
    covered = np.zeros_like(ps)
    for x, (low, high) in enumerate(bounds):
        covered += binom.pmf(x, n, ps) * ((low <= ps) & (ps <= high))
    return float(covered.min())


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.floats(min_value=0.001, max_value=0.999))
def test_clopper_pearson_is_conservative(n: int, p: float) -> None:
    # Exact coverage (summed over every possible outcome) is never below the nominal level.
    assert _min_coverage(clopper_pearson_interval, n, np.asarray([p]), 0.95) >= 0.95 - 1e-9


def test_wilson_can_undercover_where_clopper_pearson_does_not() -> None:
    grid = np.linspace(0.005, 0.995, 199)
    wilson = _min_coverage(wilson_interval, 20, grid, 0.95)
    exact = _min_coverage(clopper_pearson_interval, 20, grid, 0.95)
    assert exact >= 0.95
    assert wilson < 0.95


def test_known_values() -> None:
    # Zero errors in n checks: the exact one-sided bound is 1 - alpha^(1/n).
    assert upper_bound(0, 149) == pytest.approx(1 - 0.05 ** (1 / 149))
    assert upper_bound(0, 149) <= 0.02 < upper_bound(0, 148)
    assert spot_checks_needed(0.02, 0.95) == 149
    low, high = clopper_pearson_interval(3, 50)
    assert (low, high) == pytest.approx((0.01255, 0.16548), abs=1e-4)
    low, high = wilson_interval(3, 50)
    assert (low, high) == pytest.approx((0.02061, 0.16217), abs=1e-4)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(min_value=0.001, max_value=0.04),
    st.floats(min_value=0.0, max_value=0.9),
    st.sampled_from([0.9, 0.95]),
)
def test_spot_checks_needed_reach_the_bound(
    epsilon: float, fraction: float, confidence: float
) -> None:
    rate = fraction * epsilon
    needed = spot_checks_needed(epsilon, confidence, rate)
    assert needed is not None
    assert upper_bound(round(rate * needed), needed, confidence) <= epsilon
    # Fewer checks than the zero-error minimum can never certify the bound.
    assert needed >= math.ceil(math.log(1 - confidence) / math.log(1 - epsilon))


def test_no_sample_size_certifies_a_rate_above_the_target() -> None:
    assert spot_checks_needed(0.02, 0.95, error_rate=0.03) is None
    assert spot_checks_needed(0.02, 0.95, error_rate=0.02) is None


def test_review_share_adds_escalations_and_spot_checks() -> None:
    share = review_share_for_bound(0.0, 0.02, 0.95, decisions=1000)
    assert share == pytest.approx(149 / 1000)
    # Reviewing 30% for sure relaxes the bound on the rest to 0.02 / 0.7.
    with_escalations = review_share_for_bound(0.0, 0.02, 0.95, decisions=1000, reviewed_share=0.3)
    needed = spot_checks_needed(0.02 / 0.7, 0.95)
    assert needed is not None
    assert with_escalations == pytest.approx(0.3 + needed / 1000)
    assert review_share_for_bound(0.05, 0.02, 0.95, decisions=1000) is None
    assert review_share_for_bound(0.05, 0.02, 0.95, decisions=10, reviewed_share=1.0) == 1.0


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**31 - 1))
def test_horvitz_thompson_is_unbiased_in_simulation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    population = 300
    risk = rng.random(population)
    errors = rng.random(population) < 0.05 + 0.3 * risk  # riskier decisions err more
    inclusion = np.clip(0.05 + 0.6 * risk, 0.05, 1.0)  # and are sampled more
    truth = errors.mean()
    truth_undetected = (errors * (1 - inclusion)).sum() / population  # expected, given π
    estimates, undetected = [], []
    for _ in range(400):
        taken = rng.random(population) < inclusion
        estimates.append(
            horvitz_thompson_error_rate(
                errors[taken].tolist(), inclusion[taken].tolist(), population
            )
        )
        undetected.append(
            horvitz_thompson_undetected_rate(
                errors[taken].tolist(), inclusion[taken].tolist(), population
            )
        )
    # 400 replicates: the standard error of the mean estimate is well under 0.01.
    assert np.mean(estimates) == pytest.approx(truth, abs=0.012)
    assert np.mean(undetected) == pytest.approx(truth_undetected, abs=0.012)
    # The naive sample mean is biased upward (risky, error-prone decisions are over-sampled).
    naive = np.mean([errors[rng.random(population) < inclusion].mean() for _ in range(200)])
    assert naive > truth


def test_spot_check_bound_equal_and_unequal_weights() -> None:
    equal = spot_check_bound([True] * 2 + [False] * 98)
    assert equal.estimate == 0.02 and equal.effective_n == 100
    assert equal.upper == pytest.approx(upper_bound(2, 100))
    assert equal.lower <= 0.02 <= equal.upper
    # Down-weighting the errors (sampled for sure) lowers the estimate; unequal weights shrink n.
    weighted = spot_check_bound([True, True] + [False] * 98, [1.0, 1.0] + [0.1] * 98)
    assert weighted.estimate == pytest.approx(2 / (2 + 980))
    assert weighted.effective_n < 100
    assert effective_sample_size([0.5] * 10) == pytest.approx(10)
    wilson = spot_check_bound([False] * 50, method="wilson")
    assert 0 < wilson.upper < spot_check_bound([False] * 50).upper


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: spot_check_bound([]), "at least one"),
        (lambda: spot_check_bound([True], [0.0]), r"\(0, 1\]"),
        (lambda: spot_check_bound([True, False], [0.5]), "2 error flags but 1"),
        (lambda: clopper_pearson_interval(5, 3), "between 0 and n"),
        (lambda: wilson_interval(1, 3, 1.5), "confidence"),
        (lambda: horvitz_thompson_error_rate([True], [0.5], 0), "population"),
        (lambda: spot_checks_needed(0.0), "epsilon"),
    ],
)
def test_bad_input_is_a_clear_error(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=message):
        call()
