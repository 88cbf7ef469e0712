"""The oversight chain: exact values vs Monte Carlo, failure modes, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cai2.errors import ConfigError
from cai2.simulation import (
    FailureModes,
    Hierarchy,
    HierarchyConfig,
    OversightChain,
    OversightGame,
    OversightSetting,
    amplification_factor,
    chain_level_errors,
    nso_success_probability,
    simulate_chain,
    within_binomial_interval,
)

GAME = OversightGame.from_gaps(2000.0, 1000.0)


def _chain(depth: int = 6, gap: float = 800.0, **params: object) -> OversightChain:
    setting = OversightSetting(OversightGame(), 0.0, gap)
    return Hierarchy(HierarchyConfig(depth=depth, **params)).chain(setting, depth)


def _top_error(chain: OversightChain, failure: FailureModes) -> float:
    return float(chain_level_errors([chain], failure)[0][-1])


def test_clean_chain_is_the_engels_product() -> None:
    chain = Hierarchy().chain(OversightSetting(GAME, 0.0, 2000.0), 11)
    success = 1.0 - _top_error(chain, FailureModes())
    assert success == pytest.approx(nso_success_probability(GAME, 0.0, 2000.0, 11), rel=1e-12)
    assert success == pytest.approx(0.9061, abs=5e-4)


@pytest.mark.parametrize(
    "failure",
    [
        FailureModes(),
        FailureModes(misalignment_rate=0.3, error_inheritance=0.4),
        FailureModes(correlation=0.6, compromise_probability=0.2),
        FailureModes(
            correlation=0.9,
            compromise_probability=0.3,
            compromise_mode="invert",
            misaligned_overseers_collude=False,
            misalignment_rate=0.5,
        ),
    ],
)
def test_monte_carlo_matches_exact_within_its_99_percent_interval(failure: FailureModes) -> None:
    chain = _chain(depth=5, checkpoint_every=2, spot_check_rate=0.2)
    exact = chain_level_errors([chain], failure)[0]
    sample = simulate_chain(chain, failure, trials=20_000, rng=np.random.default_rng(7))
    assert within_binomial_interval(20_000 - sample.top_errors, 20_000, 1.0 - exact[-1])
    # Every level, not only the top, agrees with the exact recursion.
    assert np.max(np.abs(sample.level_errors - exact)) < 4 * np.sqrt(0.25 / 20_000)


def test_zero_correlation_copula_equals_independence() -> None:
    chain = _chain(depth=6, checkpoint_every=3, spot_check_rate=0.3)
    independent = FailureModes(misalignment_rate=0.8)
    # A tiny ρ goes through the Gaussian-copula code paths (normals, quadrature) instead of the
    # independent shortcut, so this compares the copula at ρ → 0 with independence.
    copula = FailureModes(misalignment_rate=0.8, correlation=1e-9)
    assert _top_error(chain, copula) == pytest.approx(_top_error(chain, independent), abs=1e-7)
    trials = 20_000
    sample = simulate_chain(chain, copula, trials=trials, rng=np.random.default_rng(3))
    clean = 1.0 - _top_error(chain, independent)
    assert within_binomial_interval(trials - sample.top_errors, trials, clean)


def test_no_compromise_equals_the_clean_model_exactly() -> None:
    chain = _chain(depth=4, checkpoint_every=2, spot_check_rate=0.1)
    clean = FailureModes(misalignment_rate=0.5)
    for mode in ("pass", "invert"):
        zero = FailureModes(misalignment_rate=0.5, compromise_probability=0.0, compromise_mode=mode)
        np.testing.assert_array_equal(
            chain_level_errors([chain], zero)[0], chain_level_errors([chain], clean)[0]
        )
        a = simulate_chain(chain, zero, trials=5_000, rng=np.random.default_rng(11))
        b = simulate_chain(chain, clean, trials=5_000, rng=np.random.default_rng(11))
        np.testing.assert_array_equal(a.level_errors, b.level_errors)


def test_compromise_raises_error_and_amplification() -> None:
    chain = _chain(depth=6)
    errors = [
        chain_level_errors([chain], FailureModes(misalignment_rate=0.1, compromise_probability=q))[
            0
        ]
        for q in (0.0, 0.1, 0.3, 0.6)
    ]
    tops = [float(e[-1]) for e in errors]
    assert tops == sorted(tops) and tops[-1] > tops[0]
    amplifications = [amplification_factor(e) for e in errors]
    assert amplifications == sorted(amplifications)
    # The bottom overseer is the human, whom compromise does not touch.
    assert len({float(e[0]) for e in errors}) == 1


def test_positive_correlation_helps_an_all_or_nothing_chain() -> None:
    # Every level adversarial and no humans: success needs every Guard to win, and positively
    # dependent wins make "all win" more likely than the independent product.
    chain = Hierarchy().chain(OversightSetting(GAME, 0.0, 2000.0), 11)
    independent = 1.0 - _top_error(chain, FailureModes())
    correlated = 1.0 - _top_error(chain, FailureModes(correlation=0.5))
    assert correlated > independent


def test_positive_correlation_weakens_a_human_backstop() -> None:
    # A human reviewing every level helps less when humans miss the same things the AIs miss.
    chain = _chain(depth=3, gap=300.0, checkpoint_every=1)
    failure = FailureModes(misalignment_rate=0.2, misaligned_overseers_collude=False)
    independent = _top_error(chain, failure)
    correlated = _top_error(chain, failure.model_copy(update={"correlation": 0.8}))
    assert correlated > independent


review_levels = st.lists(st.booleans(), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(
    depth=st.integers(1, 8),
    gap=st.floats(0.0, 3000.0),
    extra=st.data(),
    rate=st.floats(0.0, 1.0),
    rho=st.floats(0.0, 0.95),
    q=st.floats(0.0, 1.0),
    mode=st.sampled_from(["pass", "invert"]),
    collude=st.booleans(),
    inheritance=st.floats(0.0, 1.0),
    spot=st.floats(0.0, 1.0),
)
def test_more_checkpoints_never_hurt(
    depth: int,
    gap: float,
    extra: st.DataObject,
    rate: float,
    rho: float,
    q: float,
    mode: str,
    collude: bool,
    inheritance: float,
    spot: float,
) -> None:
    base = _chain(depth=depth, gap=gap, spot_check_rate=spot)
    fewer = extra.draw(st.lists(st.booleans(), min_size=depth, max_size=depth))
    added = extra.draw(st.lists(st.booleans(), min_size=depth, max_size=depth))
    more = [a or b for a, b in zip(fewer, added, strict=True)]

    def with_checkpoints(flags: list[bool]) -> OversightChain:
        review = np.where(flags, 1.0, base.human_review_probability)
        return OversightChain(
            overseer_catch=base.overseer_catch,
            overseer_is_ai=base.overseer_is_ai,
            human_review_probability=review,
            human_catch=base.human_catch,
        )

    failure = FailureModes(
        misalignment_rate=rate,
        correlation=rho,
        compromise_probability=q,
        compromise_mode=mode,  # type: ignore[arg-type]
        misaligned_overseers_collude=collude,
        error_inheritance=inheritance,
    )
    few, many = chain_level_errors([with_checkpoints(fewer), with_checkpoints(more)], failure)
    assert 0.0 <= few[-1] <= 1.0 and 0.0 <= many[-1] <= 1.0
    assert np.all(many <= few + 1e-12)
    assert with_checkpoints(more).human_effort >= with_checkpoints(fewer).human_effort


def test_chain_rejects_bad_arrays() -> None:
    with pytest.raises(ConfigError, match="overseer_catch"):
        OversightChain(
            overseer_catch=np.array([1.5]),
            overseer_is_ai=np.array([False]),
            human_review_probability=np.zeros(1),
            human_catch=np.zeros(1),
        )
    with pytest.raises(ConfigError, match="equally long"):
        OversightChain(
            overseer_catch=np.array([0.5, 0.5]),
            overseer_is_ai=np.array([False]),
            human_review_probability=np.zeros(1),
            human_catch=np.zeros(1),
        )


def test_monte_carlo_is_reproducible_per_seed() -> None:
    chain = _chain(depth=5, spot_check_rate=0.3)
    failure = FailureModes(correlation=0.4, compromise_probability=0.2, misalignment_rate=0.5)
    first = simulate_chain(chain, failure, trials=3_000, rng=np.random.default_rng(5))
    again = simulate_chain(chain, failure, trials=3_000, rng=np.random.default_rng(5))
    other = simulate_chain(chain, failure, trials=3_000, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(first.level_errors, again.level_errors)
    assert not np.array_equal(first.level_errors, other.level_errors)


def test_failure_modes_validate_ranges() -> None:
    with pytest.raises(ValueError, match="correlation"):
        FailureModes(correlation=0.99)
    with pytest.raises(ValueError, match="compromise_probability"):
        FailureModes(compromise_probability=-0.1)
