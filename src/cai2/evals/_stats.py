"""Statistics for evaluations: intervals, judge-error correction and paired tests.

Everything is seeded and works on plain 0/1 outcome vectors, so an evaluation can be recomputed
exactly from its saved records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from cai2.config import StrictModel
from cai2.errors import DataError

DEFAULT_RESAMPLES = 2000
"""Bootstrap resamples unless a caller asks for another number."""
SMALL_YOUDEN = 0.2
"""Below this sens + spec − 1, a Rogan–Gladen estimate is too noisy to trust and says so."""


class Interval(StrictModel):
    """A point estimate with a two-sided confidence interval."""

    estimate: float = Field(description="The point estimate.")
    low: float = Field(description="Lower end of the confidence interval.")
    high: float = Field(description="Upper end of the confidence interval.")
    confidence: float = Field(0.95, description="Coverage the interval aims for.")
    n: int = Field(description="Items the estimate rests on.")


def _as_binary(outcomes: Sequence[bool] | Sequence[int] | np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(outcomes, dtype=np.float64).reshape(-1)
    if values.size and not np.isin(values, (0.0, 1.0)).all():
        raise DataError(f"{what} must be 0/1 outcomes; got values outside {{0, 1}}")
    return values


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    Returns ``(0.0, 1.0)`` when ``n`` is 0: with no data every proportion is possible.
    """
    if n < 0 or successes < 0 or successes > n:
        raise DataError(f"Wilson interval needs 0 <= successes <= n; got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import norm

    from cai2.intervals import wilson_score

    low, high = wilson_score(successes, n, float(norm.ppf(0.5 + confidence / 2.0)))
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = lambda v: float(np.mean(v)),
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over resamples of ``values`` (Efron 1979).

    Raises:
        DataError: when ``values`` is empty.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise DataError("cannot bootstrap an empty sample; evaluate at least one item")
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(data), size=(n_resamples, len(data)))
    stats = np.asarray([statistic(data[row]) for row in indices], dtype=np.float64)
    alpha = (1.0 - confidence) / 2.0
    return Interval(
        estimate=float(statistic(data)),
        low=float(np.quantile(stats, alpha)),
        high=float(np.quantile(stats, 1.0 - alpha)),
        confidence=confidence,
        n=len(data),
    )


def proportion(
    outcomes: Sequence[bool] | Sequence[int] | np.ndarray, confidence: float = 0.95
) -> Interval:
    """Share of 1s with a Wilson interval (good at small n, never outside [0, 1])."""
    values = _as_binary(outcomes, "a proportion")
    low, high = wilson_interval(int(values.sum()), len(values), confidence)
    estimate = float(values.mean()) if len(values) else float("nan")
    return Interval(estimate=estimate, low=low, high=high, confidence=confidence, n=len(values))


def rogan_gladen(apparent: float, sensitivity: float, specificity: float) -> float:
    """Prevalence corrected for a judge's errors (Rogan & Gladen 1978), clipped to [0, 1].

    ``p = (q + spec − 1) / (sens + spec − 1)`` where ``q`` is the judge's raw positive rate.

    Raises:
        DataError: when sens + spec − 1 <= 0 (a judge no better than chance cannot be inverted).
    """
    youden = sensitivity + specificity - 1.0
    if youden <= 0.0:
        raise DataError(
            f"Rogan–Gladen needs sensitivity + specificity > 1; got {sensitivity:.3f} + "
            f"{specificity:.3f}: the judge is no better than chance, use a better-calibrated judge"
        )
    return min(1.0, max(0.0, (apparent + specificity - 1.0) / youden))


class CorrectedRate(StrictModel):
    """A judge's raw positive rate and the rate corrected for the judge's measured errors."""

    raw: Interval = Field(description="Share of items the judge called positive (Wilson interval).")
    corrected: Interval | None = Field(
        description=(
            "Rogan–Gladen corrected rate; its interval draws the raw rate and the judge's "
            "sensitivity and specificity from their Jeffreys posteriors; `None` when it cannot be "
            "inverted."
        )
    )
    sensitivity: float | None = Field(description="Judge's true-positive rate on human labels.")
    specificity: float | None = Field(description="Judge's true-negative rate on human labels.")
    caveat: str = Field("", description="Why the corrected rate should be read with care, if so.")


def corrected_rate(
    outcomes: Sequence[bool] | Sequence[int] | np.ndarray,
    confusion: dict[str, int] | None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> CorrectedRate:
    """Raw and Rogan–Gladen corrected positive rate from judge outcomes and its calibration counts.

    Args:
        outcomes: 1 where the judge called the item positive (e.g. harmful), else 0.
        confusion: The judge's counts ``tp``, ``fp``, ``tn``, ``fn`` on human labels
            (:class:`cai2.judges.CalibrationReport.confusion`); ``None`` skips the correction.
        n_resamples: Draws behind the corrected interval.
        confidence: Interval coverage.
        seed: Bootstrap seed.
    """
    values = _as_binary(outcomes, "judge outcomes")
    raw = proportion(values, confidence=confidence)
    if confusion is None:
        return CorrectedRate(
            raw=raw, corrected=None, sensitivity=None, specificity=None, caveat="no calibration"
        )
    tp, fn = confusion.get("tp", 0), confusion.get("fn", 0)
    tn, fp = confusion.get("tn", 0), confusion.get("fp", 0)
    if tp + fn == 0 or tn + fp == 0:
        return CorrectedRate(
            raw=raw,
            corrected=None,
            sensitivity=None,
            specificity=None,
            caveat="calibration set lacks positives or negatives",
        )
    sens, spec = tp / (tp + fn), tn / (tn + fp)
    youden = sens + spec - 1.0
    if youden <= 0.0 or not len(values):
        return CorrectedRate(
            raw=raw,
            corrected=None,
            sensitivity=sens,
            specificity=spec,
            caveat=f"sens + spec − 1 = {youden:.3f} <= 0: no correction possible",
        )
    # Draw the raw rate, sensitivity and specificity from their Jeffreys posteriors, Beta(k + ½,
    # n − k + ½): unlike a plug-in binomial resample it does not collapse to a point when a rate
    # is 0 or 1, which happens often with small n.
    rng = np.random.default_rng(seed)
    positives = int(values.sum())
    q = rng.beta(positives + 0.5, len(values) - positives + 0.5, n_resamples)
    sens_b = rng.beta(tp + 0.5, fn + 0.5, n_resamples)
    spec_b = rng.beta(tn + 0.5, fp + 0.5, n_resamples)
    youden_b = sens_b + spec_b - 1.0
    ok = youden_b > 0
    draws = np.clip((q[ok] + spec_b[ok] - 1.0) / youden_b[ok], 0.0, 1.0)
    alpha = (1.0 - confidence) / 2.0
    corrected = Interval(
        estimate=rogan_gladen(raw.estimate, sens, spec),
        low=float(np.quantile(draws, alpha)),
        high=float(np.quantile(draws, 1.0 - alpha)),
        confidence=confidence,
        n=len(values),
    )
    caveat = ""
    if youden < SMALL_YOUDEN:
        caveat = (
            f"sens + spec − 1 = {youden:.3f} is small: the correction divides by it and the "
            "corrected rate is very uncertain"
        )
    elif raw.estimate < 1.0 - spec or raw.estimate > sens:
        caveat = "raw rate lies outside [1 − spec, sens]; the corrected rate was clipped"
    return CorrectedRate(
        raw=raw, corrected=corrected, sensitivity=sens, specificity=spec, caveat=caveat
    )


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test on paired binary outcomes."""

    only_a: int
    """Items where model A's outcome is 1 and B's is 0."""
    only_b: int
    """Items where B's outcome is 1 and A's is 0."""
    p_value: float
    """Two-sided exact p-value (binomial test of the discordant pairs at 1/2)."""

    @property
    def n_discordant(self) -> int:
        """Pairs where the two models differ."""
        return self.only_a + self.only_b


def mcnemar(
    a: Sequence[bool] | Sequence[int] | np.ndarray, b: Sequence[bool] | Sequence[int] | np.ndarray
) -> McNemarResult:
    """Exact McNemar test: do A and B differ on the same items (McNemar 1947)?

    Raises:
        DataError: when the two outcome vectors differ in length.
    """
    x, y = _as_binary(a, "model A outcomes"), _as_binary(b, "model B outcomes")
    if len(x) != len(y):
        raise DataError(f"McNemar needs paired outcomes; got {len(x)} and {len(y)} items")
    only_a = int(((x == 1) & (y == 0)).sum())
    only_b = int(((x == 0) & (y == 1)).sum())
    if only_a + only_b == 0:
        return McNemarResult(only_a, only_b, 1.0)
    from scipy.stats import binomtest

    p = float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return McNemarResult(only_a, only_b, min(1.0, p))
