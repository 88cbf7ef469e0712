"""The nested scalable oversight (NSO) model of Engels, Baek, Kantamneni & Tegmark (2025).

Reference: J. Engels, D. D. Baek, S. Kantamneni, M. Tegmark, "Scaling Laws For Scalable Oversight",
arXiv:2504.18530 (2025). Oversight is a game between a *Guard* (the overseer) and a *Houdini* (the
overseen model trying to escape). Each model has a general Elo and, per role, a domain Elo that is a
clipped linear ("double ReLU") function of its general Elo. The Guard wins one game with the Elo
probability ``1 / (1 + 10 ** ((E_houdini - E_guard) / 400))``. Nested oversight bridges a
general-Elo gap in ``n`` steps spaced evenly in general Elo: the model at step ``j`` guards the
model at step ``j + 1``, which then guards the next one; the chain succeeds only if the Guard wins
every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import Field, model_validator
from scipy.special import expit

from cai2.config import StrictModel
from cai2.errors import ConfigError

FloatArray = NDArray[np.float64]
ELO_SCALE = 400.0


def elo_win_probability(elo: ArrayLike, opponent_elo: ArrayLike) -> FloatArray:
    """Probability that a player rated ``elo`` beats one rated ``opponent_elo``.

    ``1 / (1 + 10 ** ((opponent_elo - elo) / 400))``, evaluated without overflow for huge gaps.
    """
    difference = (np.asarray(elo, dtype=float) - np.asarray(opponent_elo, dtype=float)) / ELO_SCALE
    # 1 / (1 + 10**-d) is the logistic function of d·ln 10; expit keeps tiny probabilities exact.
    return np.asarray(expit(np.log(10.0) * difference), dtype=float)


def elo_from_win_probability(probability: ArrayLike) -> FloatArray:
    """The Elo advantage that gives ``probability`` of winning (inverse of the Elo formula)."""
    p = np.asarray(probability, dtype=float)
    with np.errstate(divide="ignore"):
        return np.asarray(ELO_SCALE * np.log10(p / (1.0 - p)), dtype=float)


class EloCurve(StrictModel):
    """Domain Elo as a clipped linear ("double ReLU") function of general Elo (Engels et al. 2025).

    ``domain = intercept + slope * clip(general, general_min, general_max)``: flat below
    ``general_min`` (task incompetence), linear in between, flat above ``general_max`` (saturation).
    """

    slope: float = Field(
        1.0,
        description="Domain Elo gained per general Elo point on the linear part "
        "(Engels et al. 2025 fit one slope per game and role).",
    )
    intercept: float = Field(0.0, description="Domain Elo at general Elo 0 (linear part extended).")
    general_min: float | None = Field(
        None, description="General Elo below which the domain Elo is flat (incompetence plateau)."
    )
    general_max: float | None = Field(
        None, description="General Elo above which the domain Elo is flat (saturation plateau)."
    )

    @model_validator(mode="after")
    def _plateaus_ordered(self) -> EloCurve:
        if (
            self.general_min is not None
            and self.general_max is not None
            and self.general_min >= self.general_max
        ):
            raise ValueError("`general_min` must be below `general_max`")
        return self

    def domain_elo(self, general_elo: ArrayLike) -> FloatArray:
        """Domain Elo at ``general_elo`` (any shape)."""
        general = np.asarray(general_elo, dtype=float)
        if self.general_min is not None or self.general_max is not None:
            general = np.clip(general, self.general_min, self.general_max)
        return np.asarray(self.intercept + self.slope * general, dtype=float)


class OversightGame(StrictModel):
    """One oversight game: the Guard's and the Houdini's domain-Elo curves."""

    guard: EloCurve = Field(
        default_factory=EloCurve, description="Domain Elo of a model playing the overseer."
    )
    houdini: EloCurve = Field(
        default_factory=lambda: EloCurve(intercept=-400.0),
        description="Domain Elo of a model playing the overseen model trying to escape. "
        "The default puts the Houdini 400 domain Elo below a Guard of equal general Elo.",
    )

    @classmethod
    def from_gaps(
        cls,
        general_gap: float,
        domain_gap: float,
        *,
        guard_slope: float = 1.0,
        houdini_slope: float = 1.0,
        start_general_elo: float = 0.0,
    ) -> OversightGame:
        """The game of Engels et al.'s NSO analysis, given by its two gaps.

        The starting Guard has general Elo ``start_general_elo`` and domain Elo 0; the target
        Houdini has general Elo ``start_general_elo + general_gap`` and a domain Elo ``domain_gap``
        above the starting Guard's. Both curves are unclipped lines with the given slopes.
        """
        guard = EloCurve(slope=guard_slope, intercept=-guard_slope * start_general_elo)
        target = start_general_elo + general_gap
        houdini = EloCurve(slope=houdini_slope, intercept=domain_gap - houdini_slope * target)
        return cls(guard=guard, houdini=houdini)

    @classmethod
    def with_guard_advantage(cls, advantage: float, *, slope: float = 1.0) -> OversightGame:
        """Parallel lines on which a Guard beats a Houdini of equal general Elo by ``advantage``."""
        return cls(guard=EloCurve(slope=slope), houdini=EloCurve(slope=slope, intercept=-advantage))

    def guard_win_probability(
        self, guard_general_elo: ArrayLike, houdini_general_elo: ArrayLike
    ) -> FloatArray:
        """Probability that the Guard wins one game (catches the Houdini)."""
        return elo_win_probability(
            self.guard.domain_elo(guard_general_elo), self.houdini.domain_elo(houdini_general_elo)
        )


def nso_general_elos(start_general_elo: float, target_general_elo: float, steps: int) -> FloatArray:
    """General Elos of the ``steps + 1`` models of an NSO chain, evenly spaced (Engels et al.)."""
    if steps < 1:
        raise ConfigError(f"`steps` must be at least 1, got {steps}")
    return np.linspace(start_general_elo, target_general_elo, steps + 1)


def nso_step_win_probabilities(
    game: OversightGame, start_general_elo: float, target_general_elo: float, steps: int
) -> FloatArray:
    """Guard win probability at each of the ``steps`` oversight steps."""
    elos = nso_general_elos(start_general_elo, target_general_elo, steps)
    return game.guard_win_probability(elos[:-1], elos[1:])


def nso_success_probability(
    game: OversightGame, start_general_elo: float, target_general_elo: float, steps: int
) -> float:
    """Probability that every step of an ``steps``-step chain succeeds (product of the steps)."""
    wins = nso_step_win_probabilities(game, start_general_elo, target_general_elo, steps)
    return float(np.prod(wins))


@dataclass(frozen=True)
class NSOPlan:
    """The best number of oversight steps for one gap.

    Attributes:
        steps: Optimal number of steps ``n*`` (the smallest, on ties).
        success: Success probability at ``n*``.
        success_by_steps: Success probability for ``n = 1 .. max_steps`` (index ``n - 1``).
    """

    steps: int
    success: float
    success_by_steps: FloatArray


def optimal_nso(
    game: OversightGame,
    start_general_elo: float,
    target_general_elo: float,
    *,
    max_steps: int = 100,
) -> NSOPlan:
    """Search ``n = 1 .. max_steps`` for the number of steps that maximises success."""
    if max_steps < 1:
        raise ConfigError(f"`max_steps` must be at least 1, got {max_steps}")
    success = np.array(
        [
            nso_success_probability(game, start_general_elo, target_general_elo, n)
            for n in range(1, max_steps + 1)
        ]
    )
    best = int(np.argmax(success))
    return NSOPlan(steps=best + 1, success=float(success[best]), success_by_steps=success)


@dataclass(frozen=True)
class ReferencePoint:
    """A published NSO number of Engels et al. (2025) and what this model computes for it.

    Attributes:
        general_gap: General-Elo gap between the starting Guard and the target Houdini.
        domain_gap: Domain-Elo gap between them.
        steps: Number of oversight steps, or ``None`` for the optimal number.
        published_success: The success probability the paper reports.
        published_steps: The number of steps the paper reports for this point.
        success: The success probability computed here.
        computed_steps: The number of steps used here (the optimum when ``steps`` is ``None``).
    """

    general_gap: float
    domain_gap: float
    steps: int | None
    published_success: float
    published_steps: int
    success: float
    computed_steps: int

    @property
    def error_pp(self) -> float:
        """Absolute difference in percentage points."""
        return abs(self.success - self.published_success) * 100.0


# (general gap, domain gap, steps or None for the optimum, published success, published steps),
# slopes 1 for Guard and Houdini, as quoted from Engels et al. (2025) in the cai2 issue tracker.
ENGELS_PUBLISHED = (
    (2000.0, 1000.0, 1, 0.003, 1),
    (2000.0, 1000.0, None, 0.906, 11),
    (400.0, 200.0, 1, 0.24, 1),
    (400.0, 200.0, 2, 0.25, 2),
)


def engels_reference_points(max_steps: int = 100) -> list[ReferencePoint]:
    """Recompute the published reference points of Engels et al. (2025) with this model."""
    points = []
    for general_gap, domain_gap, steps, published, published_steps in ENGELS_PUBLISHED:
        game = OversightGame.from_gaps(general_gap, domain_gap)
        if steps is None:
            plan = optimal_nso(game, 0.0, general_gap, max_steps=max_steps)
            success, used = plan.success, plan.steps
        else:
            success, used = nso_success_probability(game, 0.0, general_gap, steps), steps
        points.append(
            ReferencePoint(
                general_gap, domain_gap, steps, published, published_steps, success, used
            )
        )
    return points
