"""Spot-check statistics: how wrong can a level of overseers be, given what its reviewers saw?

A reviewer (the next level up, or a person) looks at a sample of a level's decisions and marks each
as right or wrong. From that sample this module gives:

- exact Clopper–Pearson and Wilson score intervals on the error rate of a simple random sample
  (Clopper & Pearson 1934, Biometrika 26:404; Wilson 1927, JASA 22:209; Brown, Cai & DasGupta 2001,
  Statist. Sci. 16:101 compare them);
- Horvitz–Thompson estimates when the sample was drawn with unequal inclusion probabilities (risky
  or uncertain decisions are sampled more often): each reviewed decision counts ``1 / π`` times
  (Horvitz & Thompson 1952, JASA 47:663);
- the number of spot-checks, and the share of decisions a person has to review, needed to bound the
  undetected error rate by ``ε`` at confidence ``1 − α``. With no errors in ``n`` checks the exact
  one-sided bound is ``1 − α^(1/n)``, so ``n ≥ ln α / ln(1 − ε)`` (149 checks for ε = 2%, 95%).

Bounds used for decisions are one-sided upper bounds: "the error rate is at most U with confidence
``confidence``".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import ConfigDict, Field
from scipy.stats import beta, norm

from cai2.config import StrictModel
from cai2.errors import DataError
from cai2.intervals import wilson_score

BoundMethod = Literal["clopper-pearson", "wilson"]


def _check(errors: float, n: float, confidence: float) -> None:
    if n <= 0:
        raise DataError(f"a spot-check bound needs at least one reviewed decision; got n = {n}")
    if not 0 <= errors <= n:
        raise DataError(f"`errors` must be between 0 and n = {n}; got {errors}")
    if not 0.0 < confidence < 1.0:
        raise DataError(f"`confidence` must be in (0, 1); got {confidence}")


def clopper_pearson_interval(
    errors: float, n: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Exact two-sided Clopper–Pearson interval for a binomial proportion ``errors / n``.

    Non-integer counts (effective sample sizes) are accepted: the beta quantiles are continuous.
    """
    _check(errors, n, confidence)
    alpha = 1.0 - confidence
    lower = 0.0 if errors <= 0 else float(beta.ppf(alpha / 2, errors, n - errors + 1))
    upper = 1.0 if errors >= n else float(beta.ppf(1 - alpha / 2, errors + 1, n - errors))
    return lower, upper


def wilson_interval(errors: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval for ``errors / n``."""
    _check(errors, n, confidence)
    z = float(norm.ppf(1.0 - (1.0 - confidence) / 2))
    return _wilson(errors, n, z)


def _wilson(errors: float, n: float, z: float) -> tuple[float, float]:
    low, high = wilson_score(errors, n, z)
    return float(low), float(high)


def upper_bound(
    errors: float, n: float, confidence: float = 0.95, method: BoundMethod = "clopper-pearson"
) -> float:
    """One-sided upper confidence bound on the error rate: P(rate ≤ bound) ≥ ``confidence``."""
    _check(errors, n, confidence)
    if method == "wilson":
        return _wilson(errors, n, float(norm.ppf(confidence)))[1]
    if method != "clopper-pearson":
        raise DataError(f"unknown bound method `{method}`; use `clopper-pearson` or `wilson`")
    return 1.0 if errors >= n else float(beta.ppf(confidence, errors + 1, n - errors))


def horvitz_thompson_error_rate(
    errors: Sequence[bool], inclusion: Sequence[float], population: int
) -> float:
    """Unbiased estimate of the error rate of a population of ``population`` decisions.

    Args:
        errors: For each reviewed decision, whether it was wrong.
        inclusion: The probability each reviewed decision had of being reviewed (``π``, in (0, 1]).
        population: How many decisions the sample was drawn from.
    """
    if len(errors) != len(inclusion):
        raise DataError(f"{len(errors)} error flags but {len(inclusion)} inclusion probabilities")
    if population <= 0:
        raise DataError(f"`population` must be positive; got {population}")
    if any(not 0.0 < pi <= 1.0 for pi in inclusion):
        raise DataError("every inclusion probability must be in (0, 1]")
    return sum(1.0 / pi for wrong, pi in zip(errors, inclusion, strict=True) if wrong) / population


def horvitz_thompson_undetected_rate(
    errors: Sequence[bool], inclusion: Sequence[float], population: int
) -> float:
    """Unbiased estimate of the rate of errors that were NOT reviewed.

    A reviewed error is caught; an unreviewed one is not. Each reviewed decision stands for
    ``(1 − π) / π`` unreviewed ones like it, so decisions reviewed for sure (π = 1) add nothing.
    """
    if len(errors) != len(inclusion):
        raise DataError(f"{len(errors)} error flags but {len(inclusion)} inclusion probabilities")
    if population <= 0:
        raise DataError(f"`population` must be positive; got {population}")
    if any(not 0.0 < pi <= 1.0 for pi in inclusion):
        raise DataError("every inclusion probability must be in (0, 1]")
    total = sum((1.0 - pi) / pi for wrong, pi in zip(errors, inclusion, strict=True) if wrong)
    return total / population


def effective_sample_size(inclusion: Sequence[float]) -> float:
    """Kish's effective sample size ``(Σ w)² / Σ w²`` of weights ``w = 1 / π``."""
    weights = [1.0 / pi for pi in inclusion]
    return sum(weights) ** 2 / sum(w * w for w in weights) if weights else 0.0


class SpotCheckBound(StrictModel):
    """What a set of spot-checks says about the error rate of the decisions they were drawn from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_reviewed: int = Field(description="How many decisions were reviewed.")
    n_errors: int = Field(description="How many of them were wrong.")
    estimate: float = Field(
        description="Point estimate of the error rate (Horvitz–Thompson ratio)."
    )
    lower: float = Field(description="Lower end of the two-sided interval at `confidence`.")
    upper: float = Field(description="One-sided upper bound at `confidence`.")
    effective_n: float = Field(description="Kish effective sample size (= n for equal weights).")
    confidence: float = Field(description="Confidence level of the bounds.")
    method: BoundMethod = Field(description="Interval used: `clopper-pearson` or `wilson`.")


def spot_check_bound(
    errors: Sequence[bool],
    inclusion: Sequence[float] | None = None,
    *,
    confidence: float = 0.95,
    method: BoundMethod = "clopper-pearson",
) -> SpotCheckBound:
    """Bound the error rate of the decisions a spot-check sample was drawn from.

    With equal inclusion probabilities the bound is exact (Clopper–Pearson) or Wilson on
    ``(errors, n)``. With unequal ones the point estimate is the Horvitz–Thompson (Hájek) ratio
    ``Σ e/π / Σ 1/π`` and the interval is taken at Kish's effective sample size — an approximation
    that widens the interval as the weights grow unequal.

    Raises:
        DataError: for an empty sample, mismatched lengths or probabilities outside (0, 1].
    """
    if not errors:
        raise DataError("no reviewed decisions: a spot-check bound needs at least one")
    pis = [1.0] * len(errors) if inclusion is None else list(inclusion)
    if len(pis) != len(errors):
        raise DataError(f"{len(errors)} error flags but {len(pis)} inclusion probabilities")
    if any(not 0.0 < pi <= 1.0 for pi in pis):
        raise DataError("every inclusion probability must be in (0, 1]")
    n_errors = sum(bool(e) for e in errors)
    if max(pis) - min(pis) < 1e-12:
        estimate, n_eff, x = n_errors / len(errors), float(len(errors)), float(n_errors)
    else:
        weights = [1.0 / pi for pi in pis]
        estimate = sum(w for w, e in zip(weights, errors, strict=True) if e) / sum(weights)
        n_eff = effective_sample_size(pis)
        x = estimate * n_eff
    if method == "wilson":
        lower = wilson_interval(x, n_eff, confidence)[0]
    else:
        lower = clopper_pearson_interval(x, n_eff, confidence)[0]
    return SpotCheckBound(
        n_reviewed=len(errors),
        n_errors=n_errors,
        estimate=estimate,
        lower=lower,
        upper=upper_bound(x, n_eff, confidence, method),
        effective_n=n_eff,
        confidence=confidence,
        method=method,
    )


def spot_checks_needed(
    epsilon: float,
    confidence: float = 0.95,
    error_rate: float = 0.0,
    *,
    max_checks: int = 1_000_000,
) -> int | None:
    """Smallest number of random spot-checks whose exact upper bound is ≤ ``epsilon``.

    Args:
        epsilon: The error rate to certify, e.g. 0.02.
        confidence: Confidence of the one-sided bound, e.g. 0.95.
        error_rate: The error rate expected among the checked decisions; the check is assumed to
            find ``round(error_rate · n)`` errors.
        max_checks: Give up beyond this many.

    Returns:
        The number of checks, or ``None`` when no sample size reaches the bound (the expected error
        rate is not below ``epsilon``).
    """
    if not 0.0 < epsilon < 1.0:
        raise DataError(f"`epsilon` must be in (0, 1); got {epsilon}")
    if not 0.0 <= error_rate <= 1.0:
        raise DataError(f"`error_rate` must be in [0, 1]; got {error_rate}")
    if error_rate >= epsilon:
        return None
    alpha = 1.0 - confidence
    low = max(1, math.ceil(math.log(alpha) / math.log(1.0 - epsilon)))  # the zero-error minimum

    def reaches(n: int) -> bool:
        return upper_bound(round(error_rate * n), n, confidence) <= epsilon

    if reaches(low):
        return low
    high = low
    while not reaches(high):
        high *= 2
        if high > max_checks:
            return None
    # Bisect between the last doubling that failed and the first that reached the bound. Rounding
    # the expected errors makes the bound slightly non-monotone in n, so then step back while the
    # previous n still reaches it.
    failed = max(low, high // 2)
    while high - failed > 1:
        middle = (failed + high) // 2
        if reaches(middle):
            high = middle
        else:
            failed = middle
    while high - 1 >= low and reaches(high - 1):
        high -= 1
    return high


def review_share_for_bound(
    error_rate: float,
    epsilon: float,
    confidence: float = 0.95,
    *,
    decisions: int,
    reviewed_share: float = 0.0,
) -> float | None:
    """Share of ``decisions`` a person must look at so undetected errors are ≤ ``epsilon``.

    The people review ``reviewed_share`` of the decisions for sure (escalations; their errors are
    caught) and spot-check a random sample of the rest, whose error rate is ``error_rate``. The
    undetected error rate over all decisions is ``(1 − reviewed_share) · rate(rest)``, so the
    spot-checks have to bound ``rate(rest)`` by ``epsilon / (1 − reviewed_share)``.

    Returns:
        ``reviewed_share`` plus the spot-check share, capped at 1 (review everything); ``None`` when
        no number of spot-checks within ``decisions`` reaches the bound.
    """
    if not 0.0 <= reviewed_share <= 1.0:
        raise DataError(f"`reviewed_share` must be in [0, 1]; got {reviewed_share}")
    if decisions <= 0:
        raise DataError(f"`decisions` must be positive; got {decisions}")
    rest = 1.0 - reviewed_share
    if rest <= 0.0:
        return 1.0
    target = min(epsilon / rest, 1.0 - 1e-12)
    if error_rate <= 0.0 and target >= 1.0 - 1e-9:
        return reviewed_share
    needed = spot_checks_needed(target, confidence, error_rate)
    remaining = rest * decisions
    if needed is None or needed > remaining:
        return None
    return reviewed_share + needed / decisions
