"""The Wilson score interval, shared by the evaluation, oversight and simulation statistics.

Each of those packages keeps its own public ``wilson_interval`` (with the input checks and error
types of its domain); the arithmetic lives here once.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def wilson_score(
    successes: ArrayLike, n: float, z: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Wilson (1927) score interval of ``successes / n`` at normal quantile ``z``, elementwise.

    ``successes`` may be fractional (effective counts of a weighted sample) and ``n`` must be
    positive; callers check their inputs. The interval always contains the observed share, so the
    clamps only remove floating-point rounding at 0 and 1.
    """
    p = np.asarray(successes, dtype=np.float64) / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half = z * np.sqrt(np.maximum(0.0, p * (1.0 - p) / n + z * z / (4.0 * n * n))) / denominator
    low = np.clip(np.minimum(p, centre - half), 0.0, 1.0)
    high = np.clip(np.maximum(p, centre + half), 0.0, 1.0)
    return low, high
