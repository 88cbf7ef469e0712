"""A chain of oversight levels with failure modes, evaluated exactly and by Monte Carlo.

Level 0 is the trusted human overseer; level ``j`` (1..n) is overseen by level ``j - 1`` and may
also be reviewed by a human (a mandatory checkpoint or a random spot-check). Each level is *born*
misaligned with probability ``misalignment_rate``; it ends up misaligned-and-undetected ("in
error") unless its overseer or a human reviewer catches it, and a caught model is assumed to be
corrected. With every level adversarial (rate 1), no humans and no failure modes this is exactly
the success product of Engels et al. (2025): the top level is clean only if every step's Guard won.

Failure modes (all independent of each other):

* **Correlated misses**: the miss events of all reviewers of a chain share a one-factor Gaussian
  copula with correlation ``correlation`` (a common blind spot). Marginal miss probabilities are
  unchanged.
* **Compromised overseers**: each AI overseer is, independently with probability
  ``compromise_probability``, compromised for a cycle: it passes errors upward (catches nothing) or
  inverts its verdict (catches exactly when an honest overseer would have missed).
* **Misaligned overseers**: an overseer that is itself in error colludes (catches nothing) unless
  ``misaligned_overseers_collude`` is off, and may pass its misalignment to an aligned level below
  it with probability ``error_inheritance``.

Exact values integrate the copula's common factor with Gauss–Hermite quadrature; given the factor
the levels form a two-state Markov chain. The Monte Carlo draws the same events trial by trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field
from scipy.special import ndtr, ndtri
from scipy.stats import norm

from cai2.config import StrictModel
from cai2.errors import ConfigError
from cai2.intervals import wilson_score

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
MAX_CORRELATION = 0.95


class FailureModes(StrictModel):
    """How oversight can fail beyond losing the Guard-vs-Houdini game."""

    misalignment_rate: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Probability that a model in the chain is misaligned (tries to evade "
        "oversight). 1.0 is the worst case of Engels et al. (2025), where every overseen model "
        "plays Houdini.",
    )
    correlation: float = Field(
        0.0,
        ge=0.0,
        le=MAX_CORRELATION,
        description="Correlation ρ of the Gaussian copula shared by all miss events of one chain "
        "(AI overseers and human reviewers); 0 means independent misses. Capped at 0.95 so the "
        "quadrature of the exact value stays accurate.",
    )
    compromise_probability: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Probability q that an AI overseer is compromised in a cycle, independently "
        "per level; humans are never compromised.",
    )
    compromise_mode: Literal["pass", "invert"] = Field(
        "pass",
        description="What a compromised overseer does: `pass` approves everything (errors pass "
        "upward); `invert` flips its verdict (it catches only what an honest overseer would miss).",
    )
    misaligned_overseers_collude: bool = Field(
        True,
        description="Whether an overseer that is itself misaligned and undetected approves "
        "everything below it (collusion) instead of judging like an honest one.",
    )
    error_inheritance: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Probability that an aligned model overseen (and trained) by a misaligned "
        "overseer becomes misaligned itself.",
    )


@dataclass(frozen=True)
class OversightChain:
    """One protocol instance: ``depth`` levels above the human, each with its reviewers.

    All arrays have length ``depth``; index ``j - 1`` describes level ``j``.

    Attributes:
        overseer_catch: Probability that level ``j - 1``, honest and uncompromised, catches a
            misaligned level ``j``.
        overseer_is_ai: Whether level ``j``'s overseer is an AI (compromise applies) or the human.
        human_review_probability: Probability that a human also reviews level ``j`` (1 for a
            mandatory checkpoint, the spot-check rate otherwise).
        human_catch: Probability that such a human review catches a misaligned level ``j``.
        fixed_human_effort: Human oversight games per cycle not represented by the arrays.
    """

    overseer_catch: FloatArray
    overseer_is_ai: BoolArray
    human_review_probability: FloatArray
    human_catch: FloatArray
    fixed_human_effort: float = 0.0

    def __post_init__(self) -> None:
        sizes = {
            len(self.overseer_catch),
            len(self.overseer_is_ai),
            len(self.human_review_probability),
            len(self.human_catch),
        }
        if len(sizes) != 1 or not self.depth:
            raise ConfigError("an oversight chain needs equally long, non-empty level arrays")
        for name in ("overseer_catch", "human_review_probability", "human_catch"):
            values = getattr(self, name)
            if not (values.min() >= 0.0 and values.max() <= 1.0):  # also rejects NaN
                raise ConfigError(f"`{name}` of an oversight chain must lie in [0, 1]")

    @property
    def depth(self) -> int:
        """Number of oversight steps (levels above the human)."""
        return len(self.overseer_catch)

    @property
    def human_effort(self) -> float:
        """Expected human oversight games per cycle: the human as an overseer plus reviews."""
        as_overseer = float(np.sum(~self.overseer_is_ai))
        return as_overseer + float(np.sum(self.human_review_probability)) + self.fixed_human_effort


def single_step_chain(catch: float, *, overseer_is_ai: bool, human_effort: float) -> OversightChain:
    """A one-step chain: one overseer, no extra human review."""
    return OversightChain(
        overseer_catch=np.array([catch], dtype=float),
        overseer_is_ai=np.array([overseer_is_ai]),
        human_review_probability=np.zeros(1),
        human_catch=np.zeros(1),
        fixed_human_effort=human_effort - (0.0 if overseer_is_ai else 1.0),
    )


@dataclass(frozen=True)
class ChainBatch:
    """Candidate chains of one protocol, padded to a common depth for vectorised evaluation.

    Arrays have shape ``(candidates, max_depth)``; row ``k`` uses its first ``depths[k]`` columns.
    """

    overseer_catch: FloatArray
    overseer_is_ai: BoolArray
    human_review_probability: FloatArray
    human_catch: FloatArray
    depths: NDArray[np.int64]
    fixed_human_effort: FloatArray

    @classmethod
    def stack(cls, chains: Sequence[OversightChain]) -> ChainBatch:
        """Pad and stack ``chains``."""
        if not chains:
            raise ConfigError("a chain batch needs at least one chain")
        depth = max(chain.depth for chain in chains)
        shape = (len(chains), depth)
        catch, review, human = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        is_ai = np.zeros(shape, dtype=bool)
        for row, chain in enumerate(chains):
            n = chain.depth
            catch[row, :n] = chain.overseer_catch
            is_ai[row, :n] = chain.overseer_is_ai
            review[row, :n] = chain.human_review_probability
            human[row, :n] = chain.human_catch
        return cls(
            overseer_catch=catch,
            overseer_is_ai=is_ai,
            human_review_probability=review,
            human_catch=human,
            depths=np.array([chain.depth for chain in chains], dtype=np.int64),
            fixed_human_effort=np.array([chain.fixed_human_effort for chain in chains]),
        )

    def __len__(self) -> int:
        return len(self.depths)

    @property
    def active(self) -> BoolArray:
        """Which padded cells are real levels."""
        return np.asarray(np.arange(self.overseer_catch.shape[1])[None, :] < self.depths[:, None])

    @property
    def human_effort(self) -> FloatArray:
        """Expected human oversight games per cycle of each candidate."""
        as_overseer = np.sum(~self.overseer_is_ai & self.active, axis=1)
        reviews = np.sum(self.human_review_probability * self.active, axis=1)
        return np.asarray(as_overseer + reviews + self.fixed_human_effort, dtype=float)

    def select(self, rows: BoolArray) -> ChainBatch:
        """The candidates where ``rows`` is true.

        Raises:
            ConfigError: when no candidate is selected.
        """
        if not np.any(rows):
            raise ConfigError(
                "no candidate oversight chain fits the constraints (human effort budget?)"
            )
        width = int(self.depths[rows].max())
        return ChainBatch(
            overseer_catch=self.overseer_catch[rows, :width],
            overseer_is_ai=self.overseer_is_ai[rows, :width],
            human_review_probability=self.human_review_probability[rows, :width],
            human_catch=self.human_catch[rows, :width],
            depths=self.depths[rows],
            fixed_human_effort=self.fixed_human_effort[rows],
        )

    def chain(self, row: int) -> OversightChain:
        """Candidate ``row`` as an :class:`OversightChain`."""
        n = int(self.depths[row])
        return OversightChain(
            overseer_catch=self.overseer_catch[row, :n].copy(),
            overseer_is_ai=self.overseer_is_ai[row, :n].copy(),
            human_review_probability=self.human_review_probability[row, :n].copy(),
            human_catch=self.human_catch[row, :n].copy(),
            fixed_human_effort=float(self.fixed_human_effort[row]),
        )


@lru_cache(maxsize=16)
def _hermite_nodes(nodes: int) -> tuple[FloatArray, FloatArray]:
    points, weights = np.polynomial.hermite_e.hermegauss(nodes)
    return points, weights / weights.sum()


def _factor_nodes(correlation: float, nodes: int) -> tuple[FloatArray, FloatArray]:
    """Quadrature nodes and weights for the copula's standard-normal common factor."""
    if correlation == 0.0:
        return np.zeros(1), np.ones(1)
    return _hermite_nodes(nodes)


def _conditional_miss(miss: FloatArray, correlation: float, factor: FloatArray) -> FloatArray:
    """P(miss | common factor) for marginal miss probabilities ``miss`` (shape ``(..., 1)``)."""
    if correlation == 0.0:
        return miss
    threshold = ndtri(miss)
    return np.asarray(
        ndtr((threshold - np.sqrt(correlation) * factor) / np.sqrt(1.0 - correlation)), dtype=float
    )


def batch_level_errors(batch: ChainBatch, failure: FailureModes, *, nodes: int = 96) -> FloatArray:
    """Exact error probability of every level of every candidate, shape ``(candidates, depth)``.

    Padding columns repeat the error of the candidate's top level.
    """
    factor, weights = _factor_nodes(failure.correlation, nodes)
    compromise = np.where(batch.overseer_is_ai, failure.compromise_probability, 0.0)
    active = batch.active
    rate = failure.misalignment_rate
    rate_under_bad = rate + (1.0 - rate) * failure.error_inheritance
    count, depth = batch.overseer_catch.shape
    state = np.zeros((count, factor.size))  # P(previous level in error | factor)
    errors = np.zeros((count, depth))
    for level in range(depth):
        column = slice(level, level + 1)
        miss_ai = _conditional_miss(
            1.0 - batch.overseer_catch[:, column], failure.correlation, factor
        )
        miss_human = _conditional_miss(
            1.0 - batch.human_catch[:, column], failure.correlation, factor
        )
        q = compromise[:, column]
        compromised_catch = 0.0 if failure.compromise_mode == "pass" else miss_ai
        honest_catch = (1.0 - q) * (1.0 - miss_ai) + q * compromised_catch
        bad_catch = 0.0 if failure.misaligned_overseers_collude else honest_catch
        human_miss = 1.0 - batch.human_review_probability[:, column] * (1.0 - miss_human)
        from_good = rate * (1.0 - honest_catch) * human_miss
        from_bad = rate_under_bad * (1.0 - bad_catch) * human_miss
        updated = from_good * (1.0 - state) + from_bad * state
        state = np.where(active[:, column], updated, state)
        errors[:, level] = state @ weights
    return errors


def chain_level_errors(
    chains: Sequence[OversightChain], failure: FailureModes, *, nodes: int = 96
) -> list[FloatArray]:
    """Exact probability that each level of each chain is misaligned and undetected.

    Args:
        chains: Chains to evaluate together (vectorised; depths may differ).
        failure: The failure modes.
        nodes: Gauss–Hermite nodes for the copula's common factor (ignored when ρ = 0).

    Returns:
        One array per chain with the error probability of levels ``1 .. depth``.
    """
    if not chains:
        return []
    errors = batch_level_errors(ChainBatch.stack(chains), failure, nodes=nodes)
    return [errors[row, : chain.depth] for row, chain in enumerate(chains)]


@dataclass(frozen=True)
class ChainSample:
    """Monte Carlo outcome of one chain.

    Attributes:
        trials: Number of simulated cycles.
        level_errors: Fraction of cycles in which each level ended misaligned and undetected.
        top_errors: Number of cycles whose top level ended in error.
    """

    trials: int
    level_errors: FloatArray
    top_errors: int

    @property
    def success(self) -> float:
        """Fraction of cycles whose top level is clean."""
        return 1.0 - self.top_errors / self.trials

    def success_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """Wilson score interval for the success probability."""
        return wilson_interval(self.trials - self.top_errors, self.trials, confidence)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    low, high = wilson_bounds(np.array([successes]), trials, confidence)
    return float(low[0]), float(high[0])


def wilson_bounds(
    successes: NDArray[np.int64] | FloatArray, trials: int, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score intervals for an array of success counts out of ``trials`` each."""
    if trials <= 0:
        raise ConfigError("a confidence interval needs at least one trial")
    return wilson_score(successes, trials, float(norm.ppf(0.5 + confidence / 2.0)))


def _bernoulli(rng: np.random.Generator, trials: int, probability: FloatArray) -> BoolArray:
    """Independent events of the given per-level probabilities; no draws when all are 0 or 1."""
    if np.all(probability == 0.0):
        return np.zeros((trials, probability.size), dtype=bool)
    if np.all(probability == 1.0):
        return np.ones((trials, probability.size), dtype=bool)
    # float32 uniforms halve the cost; their 2⁻²⁴ resolution is far below Monte Carlo error.
    return rng.random((trials, probability.size), dtype=np.float32) < probability


def simulate_chain(
    chain: OversightChain, failure: FailureModes, *, trials: int, rng: np.random.Generator
) -> ChainSample:
    """Simulate ``trials`` independent oversight cycles of ``chain`` (vectorised over trials).

    Events whose probability is 0 or 1 everywhere are not drawn, so the random stream consumed (and
    the cost) depends on the configuration; the result is reproducible for a given seed and config.
    """
    if trials < 1:
        raise ConfigError(f"`trials` must be at least 1, got {trials}")
    rho = failure.correlation
    depth = chain.depth
    common = rng.standard_normal(trials) if rho > 0.0 else None

    def misses(miss: FloatArray) -> BoolArray:
        if common is None:
            return _bernoulli(rng, trials, miss)
        latent = np.sqrt(rho) * common[:, None] + np.sqrt(1.0 - rho) * rng.standard_normal(
            (trials, depth)
        )
        # A reviewer misses when its latent falls below the quantile of its miss probability.
        return np.asarray(latent < ndtri(miss)[None, :])

    miss_ai = misses(1.0 - chain.overseer_catch)
    reviewed = _bernoulli(rng, trials, chain.human_review_probability)
    if reviewed.any():
        miss_human = misses(1.0 - chain.human_catch)
    else:
        miss_human = np.ones((trials, depth), dtype=bool)
    born_bad = _bernoulli(rng, trials, np.full(depth, failure.misalignment_rate))
    compromise = np.where(chain.overseer_is_ai, failure.compromise_probability, 0.0)
    compromised = _bernoulli(rng, trials, compromise)
    inherits = _bernoulli(rng, trials, np.full(depth, failure.error_inheritance))
    invert = failure.compromise_mode == "invert"
    collude = failure.misaligned_overseers_collude
    in_error = np.zeros(trials, dtype=bool)
    level_errors = np.zeros(depth)
    for level in range(depth):
        honest_catch = ~miss_ai[:, level]
        if compromise[level] > 0.0:
            compromised_catch = miss_ai[:, level] if invert else False
            honest_catch = np.where(compromised[:, level], compromised_catch, honest_catch)
        catch = honest_catch & ~in_error if collude else honest_catch
        misaligned = born_bad[:, level] | (in_error & inherits[:, level])
        human_caught = reviewed[:, level] & ~miss_human[:, level]
        in_error = misaligned & ~catch & ~human_caught
        level_errors[level] = np.count_nonzero(in_error) / trials
    return ChainSample(trials=trials, level_errors=level_errors, top_errors=int(in_error.sum()))


def amplification_factor(level_errors: FloatArray) -> float:
    """Error at the top level divided by error at the bottom level (``nan`` if the bottom is 0)."""
    bottom = float(level_errors[0])
    return float(level_errors[-1]) / bottom if bottom > 0.0 else float("nan")
