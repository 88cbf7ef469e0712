"""Sweeps of oversight protocols across orders of magnitude of compute, and the failure-mode study.

Capability grows with compute as ``general Elo = human_general_elo + κ · orders``, where ``orders``
is log10 of compute relative to the trusted human-level overseer and ``κ`` (``elo_per_order``) is
swept. Every point gets an exact success probability and, with ``trials > 0``, a seeded Monte Carlo
estimate with a 95% Wilson band and an exact-binomial 99% check against the exact value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator
from scipy.stats import binom

from cai2.config import StrictModel
from cai2.errors import ConfigError
from cai2.simulation._chain import (
    MAX_CORRELATION,
    FailureModes,
    OversightChain,
    amplification_factor,
    batch_level_errors,
    chain_level_errors,
    simulate_chain,
    wilson_bounds,
)
from cai2.simulation._elo import FloatArray, OversightGame
from cai2.simulation._empirical import EmpiricalGuardConfig, GuardFit, fit_guard_curve
from cai2.simulation._protocols import (
    Hierarchy,
    HierarchyConfig,
    OversightProtocol,
    OversightSetting,
    build_protocol,
)

Progress = Callable[[int, int], None]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Correlation = Annotated[float, Field(ge=0.0, le=MAX_CORRELATION)]


class ProtocolEntry(StrictModel):
    """One protocol in a sweep: a registered name, a label and its parameters."""

    protocol: str = Field(description="Registered protocol name, e.g. `hierarchy` or `debate`.")
    label: str | None = Field(None, description="Name in tables and plots (default: `protocol`).")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Keyword parameters of the protocol's config model."
    )

    @model_validator(mode="after")
    def _buildable(self) -> ProtocolEntry:
        try:
            self.build()
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        return self

    @property
    def display_label(self) -> str:
        """``label`` or the protocol name."""
        return self.label or self.protocol

    def build(self) -> OversightProtocol:
        """The configured protocol."""
        return build_protocol(self.protocol, self.params)


def default_protocols() -> list[ProtocolEntry]:
    """The default comparison.

    Direct human review; the CAI 2.0 hierarchy (human checkpoint every 2 levels, 5% spot-checks)
    at depth 4 and at the optimal depth within 5 human oversight games per cycle; the optimal
    nested oversight of Engels et al. without any human review beyond level 1; debate;
    weak-to-strong supervision.
    """
    humans = {"spot_check_rate": 0.05, "checkpoint_every": 2}
    optimal = {"depth": "optimal", "human_effort_budget": 5.0, **humans}
    return [
        ProtocolEntry(protocol="direct_human_review", label="direct human review"),
        ProtocolEntry(
            protocol="hierarchy", label="hierarchy (depth 4)", params={"depth": 4, **humans}
        ),
        ProtocolEntry(protocol="hierarchy", label="hierarchy (optimal depth)", params=optimal),
        ProtocolEntry(
            protocol="hierarchy", label="nested oversight, no humans", params={"depth": "optimal"}
        ),
        ProtocolEntry(protocol="debate", label="debate"),
        ProtocolEntry(protocol="weak_to_strong", label="weak-to-strong"),
    ]


class FailureStudyConfig(StrictModel):
    """Amplification of errors up a hierarchy under compromise and correlation, with checkpoints."""

    orders: float = Field(4.0, ge=0.0, description="Orders of magnitude between human and target.")
    elo_per_order: float = Field(
        200.0, gt=0.0, description="κ, general Elo per order of magnitude."
    )
    depth: int = Field(6, ge=1, le=500, description="Depth of the studied hierarchy.")
    checkpoint_settings: list[Annotated[int, Field(ge=1)] | None] = Field(
        default_factory=lambda: [None, 3, 1],
        description="Values of `checkpoint_every` to compare (null = no checkpoints).",
    )
    compromise_probabilities: list[Probability] = Field(
        default_factory=lambda: [round(0.05 * i, 2) for i in range(11)],
        description="Values of q to sweep.",
    )
    correlations: list[Correlation] = Field(
        default_factory=lambda: [0.0, 0.5], description="Values of ρ to compare (0 to 0.95)."
    )
    failure: FailureModes = Field(
        default_factory=lambda: FailureModes(misalignment_rate=0.1),
        description="Failure modes; q and ρ are overridden by the swept values.",
    )


class SweepConfig(StrictModel):
    """Everything a `cai2 simulate` run depends on."""

    orders_min: float = Field(0.0, ge=0.0, description="Smallest orders of magnitude of compute.")
    orders_max: float = Field(6.0, gt=0.0, description="Largest orders of magnitude of compute.")
    points: int = Field(61, ge=2, le=10_000, description="Grid points between min and max.")
    elo_per_order: list[float] = Field(
        default_factory=lambda: [100.0, 200.0, 400.0],
        min_length=1,
        description="Values of κ, general Elo per order of magnitude of compute (an assumption; "
        "swept because no measurement pins it down).",
    )
    human_general_elo: float = Field(
        0.0, description="General Elo of the trusted human overseer (only matters with plateaus)."
    )
    game: OversightGame = Field(
        default_factory=OversightGame,
        description="Guard and Houdini domain-Elo curves. Default: slopes 1, the Guard 400 domain "
        "Elo ahead of a Houdini of equal general Elo (an assumption, not a measurement).",
    )
    empirical: EmpiricalGuardConfig | None = Field(
        None, description="Measured judges; when given, they replace `game` (see empirical mode)."
    )
    failure: FailureModes = Field(
        default_factory=FailureModes, description="Failure modes applied to every protocol."
    )
    protocols: list[ProtocolEntry] = Field(
        default_factory=default_protocols, min_length=1, description="Protocols to compare."
    )
    trials: int = Field(
        10_000, ge=0, description="Monte Carlo cycles per point and protocol (0: exact only)."
    )
    seed: int = Field(0, ge=0, description="Seed of the Monte Carlo streams.")
    success_target: float = Field(
        0.9,
        gt=0.0,
        lt=1.0,
        description="Success probability that counts as 'alignment kept' in the claim check.",
    )
    quadrature_nodes: int = Field(
        96, ge=8, le=200, description="Gauss–Hermite nodes for the copula's common factor."
    )
    failure_study: FailureStudyConfig | None = Field(
        default_factory=FailureStudyConfig, description="The failure-mode study (null to skip)."
    )

    @model_validator(mode="after")
    def _range(self) -> SweepConfig:
        if self.orders_max <= self.orders_min:
            raise ValueError("`orders_max` must exceed `orders_min`")
        return self

    def orders_grid(self) -> FloatArray:
        """The orders-of-magnitude grid."""
        return np.linspace(self.orders_min, self.orders_max, self.points)


@dataclass(frozen=True)
class ProtocolOutcome:
    """One protocol at one point: the best chain's exact values and its Monte Carlo estimate."""

    chain: OversightChain
    level_errors: FloatArray
    mc_level_errors: FloatArray | None
    mc_successes: int | None
    trials: int

    @property
    def success(self) -> float:
        """Exact probability that the top level is clean."""
        return 1.0 - float(self.level_errors[-1])


def evaluate_protocol(
    protocol: OversightProtocol,
    setting: OversightSetting,
    failure: FailureModes,
    *,
    trials: int = 0,
    rng: np.random.Generator | None = None,
    nodes: int = 96,
) -> ProtocolOutcome:
    """Exact value of the protocol's best chain at ``setting``, plus Monte Carlo if ``trials``."""
    batch = protocol.candidates(setting)
    errors = batch_level_errors(batch, failure, nodes=nodes)
    best = int(np.argmin(errors[:, -1]))  # padding repeats the top; ties go to the shallowest
    chain = batch.chain(best)
    level_errors = errors[best, : chain.depth]
    if trials <= 0:
        return ProtocolOutcome(chain, level_errors, None, None, 0)
    sample = simulate_chain(chain, failure, trials=trials, rng=rng or np.random.default_rng())
    return ProtocolOutcome(
        chain, level_errors, sample.level_errors, trials - sample.top_errors, trials
    )


@dataclass
class ProtocolCurve:
    """One protocol at one κ across the orders-of-magnitude grid."""

    label: str
    protocol: str
    elo_per_order: float
    success: FloatArray
    depth: NDArray[np.int64]
    human_effort: FloatArray
    amplification: FloatArray
    mc_success: FloatArray
    mc_low: FloatArray
    mc_high: FloatArray
    mc_within_99: NDArray[np.bool_]

    def orders_kept(self, orders: FloatArray, target: float) -> float | None:
        """Largest orders of magnitude up to which success stays ≥ ``target`` (None: never)."""
        below = np.nonzero(self.success < target)[0]
        if below.size == 0:
            return float(orders[-1])
        return None if below[0] == 0 else float(orders[below[0] - 1])

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "label": self.label,
            "protocol": self.protocol,
            "elo_per_order": self.elo_per_order,
            "success": self.success.tolist(),
            "depth": self.depth.tolist(),
            "human_effort": self.human_effort.tolist(),
            "amplification": [_finite(value) for value in self.amplification],
            "mc_success": [_finite(value) for value in self.mc_success],
            "mc_low_95": [_finite(value) for value in self.mc_low],
            "mc_high_95": [_finite(value) for value in self.mc_high],
            "mc_within_99": self.mc_within_99.tolist(),
        }


def _finite(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def within_binomial_interval(successes: int, trials: int, p: float) -> bool:
    """Whether ``successes`` of ``trials`` is in the central 99% binomial interval of ``p``."""
    low, high = binom.interval(0.99, trials, p)
    return bool(low <= successes <= high)


def sweep_game(config: SweepConfig, elo_per_order: float, fit: GuardFit | None) -> OversightGame:
    """The game at one κ: the configured one, or the empirical fit."""
    if fit is None or config.empirical is None:
        return config.game
    return fit.game(elo_per_order, config.human_general_elo, config.empirical.houdini_slope)


@dataclass
class SweepResult:
    """Everything a sweep produced."""

    config: SweepConfig
    orders: FloatArray
    curves: list[ProtocolCurve]
    failure_study: dict[str, Any] | None
    guard_fit: GuardFit | None

    def mc_check(self) -> dict[str, Any]:
        """How many Monte Carlo estimates fall in the 99% binomial interval of the exact value."""
        flags = np.concatenate([curve.mc_within_99 for curve in self.curves])
        if self.config.trials == 0 or flags.size == 0:
            return {"comparisons": 0, "within_99": 0, "fraction_within_99": None}
        within = int(flags.sum())
        # Under a correct model about 1% of comparisons fall outside; this is the tail probability
        # of seeing at least this many outside by chance.
        outside = flags.size - within
        p_value = float(binom.sf(outside - 1, flags.size, 0.01)) if outside else 1.0
        return {
            "comparisons": int(flags.size),
            "within_99": within,
            "fraction_within_99": within / flags.size,
            "p_value_outside_count": p_value,
        }

    def claim_check(self) -> list[dict[str, Any]]:
        """Per protocol and κ: orders of magnitude over which success stays ≥ the target."""
        return [
            {
                "label": curve.label,
                "elo_per_order": curve.elo_per_order,
                "orders_kept": curve.orders_kept(self.orders, self.config.success_target),
                "success_at_4_orders": _at(self.orders, curve.success, 4.0),
                "success_at_max": float(curve.success[-1]),
            }
            for curve in self.curves
        ]

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form of the whole result."""
        fit = None
        if self.guard_fit is not None:
            fit = {
                "intercept": self.guard_fit.intercept,
                "slope_per_order": self.guard_fit.slope_per_order,
                "intercept_stderr": self.guard_fit.intercept_stderr,
                "slope_stderr": self.guard_fit.slope_stderr,
                "reference_log10_compute": self.guard_fit.reference_log10_compute,
            }
        return {
            "config": self.config.model_dump(mode="json"),
            "orders": self.orders.tolist(),
            "curves": [curve.to_json() for curve in self.curves],
            "claim_check": self.claim_check(),
            "mc_check": self.mc_check(),
            "failure_study": self.failure_study,
            "guard_fit": fit,
        }


def _at(orders: FloatArray, values: FloatArray, where: float) -> float | None:
    if where < orders[0] or where > orders[-1]:
        return None
    return float(np.interp(where, orders, values))


def run_sweep(config: SweepConfig, progress: Progress | None = None) -> SweepResult:
    """Evaluate every protocol at every κ and grid point, then the failure-mode study.

    Args:
        config: What to sweep.
        progress: Called with ``(done, total)`` after each protocol-and-κ curve and study cell.
    """
    fit = fit_guard_curve(config.empirical.judges) if config.empirical is not None else None
    orders = config.orders_grid()
    study = config.failure_study
    study_cells = 0 if study is None else len(study.correlations) * len(study.checkpoint_settings)
    total = len(config.elo_per_order) * len(config.protocols) + study_cells
    done = 0
    curves: list[ProtocolCurve] = []
    for kappa_index, kappa in enumerate(config.elo_per_order):
        game = sweep_game(config, kappa, fit)
        for protocol_index, entry in enumerate(config.protocols):
            curves.append(
                _curve(
                    config, entry, game, kappa, orders, (config.seed, kappa_index, protocol_index)
                )
            )
            done += 1
            if progress is not None:
                progress(done, total)
    failure_study = None
    if study is not None:
        failure_study = run_failure_study(
            study, config, fit, trials=config.trials, progress=progress, offset=(done, total)
        )
    return SweepResult(config, orders, curves, failure_study, fit)


def _curve(
    config: SweepConfig,
    entry: ProtocolEntry,
    game: OversightGame,
    kappa: float,
    orders: FloatArray,
    stream: tuple[int, int, int],
) -> ProtocolCurve:
    protocol = entry.build()
    size = orders.size
    success = np.zeros(size)
    effort = np.zeros(size)
    amplification = np.zeros(size)
    depth = np.zeros(size, dtype=np.int64)
    counts = np.zeros(size, dtype=np.int64)
    for index, order in enumerate(orders):
        setting = OversightSetting(
            game, config.human_general_elo, config.human_general_elo + kappa * float(order)
        )
        rng = np.random.default_rng([*stream, index])
        outcome = evaluate_protocol(
            protocol,
            setting,
            config.failure,
            trials=config.trials,
            rng=rng,
            nodes=config.quadrature_nodes,
        )
        success[index] = outcome.success
        effort[index] = outcome.chain.human_effort
        amplification[index] = amplification_factor(outcome.level_errors)
        depth[index] = outcome.chain.depth
        counts[index] = outcome.mc_successes or 0
    if config.trials > 0:
        mc_success = counts / config.trials
        low, high = wilson_bounds(counts, config.trials, 0.95)
        lowest, highest = binom.interval(0.99, config.trials, np.clip(success, 0.0, 1.0))
        within = (lowest <= counts) & (counts <= highest)
    else:
        mc_success = low = high = np.full(size, np.nan)
        within = np.zeros(0, dtype=bool)
    return ProtocolCurve(
        label=entry.display_label,
        protocol=entry.protocol,
        elo_per_order=kappa,
        success=success,
        depth=depth,
        human_effort=effort,
        amplification=amplification,
        mc_success=mc_success,
        mc_low=low,
        mc_high=high,
        mc_within_99=within,
    )


def run_failure_study(
    study: FailureStudyConfig,
    config: SweepConfig,
    fit: GuardFit | None = None,
    *,
    trials: int = 0,
    progress: Progress | None = None,
    offset: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """Top error and amplification of a fixed-depth hierarchy against q, per ρ and checkpoints.

    Returns:
        ``{"compromise_probabilities": [...], "cells": [{"correlation", "checkpoint_every",
        "top_error", "bottom_error", "amplification", "human_effort", "mc_top_error"}, ...], ...}``.
    """
    game = sweep_game(config, study.elo_per_order, fit)
    target = config.human_general_elo + study.elo_per_order * study.orders
    setting = OversightSetting(game, config.human_general_elo, target)
    done, total = offset
    cells: list[dict[str, Any]] = []
    for rho_index, rho in enumerate(study.correlations):
        for every_index, every in enumerate(study.checkpoint_settings):
            hierarchy = Hierarchy(HierarchyConfig(depth=study.depth, checkpoint_every=every))
            chain = hierarchy.chain(setting, study.depth)
            cell: dict[str, Any] = {
                "correlation": rho,
                "checkpoint_every": every,
                "human_effort": chain.human_effort,
                "top_error": [],
                "bottom_error": [],
                "amplification": [],
                "mc_top_error": [],
                "mc_amplification": [],
            }
            for q_index, q in enumerate(study.compromise_probabilities):
                failure = FailureModes.model_validate(
                    {**study.failure.model_dump(), "correlation": rho, "compromise_probability": q}
                )
                errors = chain_level_errors([chain], failure, nodes=config.quadrature_nodes)[0]
                cell["top_error"].append(float(errors[-1]))
                cell["bottom_error"].append(float(errors[0]))
                cell["amplification"].append(_finite(amplification_factor(errors)))
                if trials > 0:
                    rng = np.random.default_rng(
                        [config.seed, 1_000 + rho_index, every_index, q_index]
                    )
                    sample = simulate_chain(chain, failure, trials=trials, rng=rng)
                    cell["mc_top_error"].append(float(sample.level_errors[-1]))
                    cell["mc_amplification"].append(
                        _finite(amplification_factor(sample.level_errors))
                    )
            cells.append(cell)
            done += 1
            if progress is not None:
                progress(done, total)
    return {
        "orders": study.orders,
        "elo_per_order": study.elo_per_order,
        "depth": study.depth,
        "misalignment_rate": study.failure.misalignment_rate,
        "compromise_mode": study.failure.compromise_mode,
        "compromise_probabilities": list(study.compromise_probabilities),
        "cells": cells,
    }
