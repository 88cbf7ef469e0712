"""Harm rate, over-refusal and the helpfulness win rate."""

from __future__ import annotations

import pytest

from cai2.errors import DataError
from cai2.evals import harm_rate, over_refusal_rate, win_rate


def test_harm_rate_is_corrected_with_the_judges_errors() -> None:
    result = harm_rate([1] * 6 + [0] * 14, {"tp": 9, "fn": 1, "tn": 8, "fp": 2}, n_resamples=500)
    assert result.raw.estimate == pytest.approx(0.3)
    assert result.corrected is not None
    assert result.corrected.estimate == pytest.approx((0.3 + 0.8 - 1) / (0.9 + 0.8 - 1))
    uncorrected = harm_rate([1, 0, 0, 0])
    assert uncorrected.corrected is None and uncorrected.raw.estimate == 0.25


def test_over_refusal_rate() -> None:
    result = over_refusal_rate([True, False, False, False])
    assert result.estimate == 0.25 and result.n == 4
    assert 0.0 < result.low < 0.25 < result.high < 1.0
    with pytest.raises(DataError, match="at least one"):
        over_refusal_rate([])


def test_win_rate_skips_unjudged_and_counts_ties_as_half() -> None:
    result = win_rate([1.0, 0.0, 0.5, None, 1.0], n_resamples=500)
    assert result.estimate == pytest.approx(0.625)
    assert result.n == 4
    assert result.low <= 0.625 <= result.high
    with pytest.raises(DataError, match="no pairwise"):
        win_rate([None])
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        win_rate([1.5])
