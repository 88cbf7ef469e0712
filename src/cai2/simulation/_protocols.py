"""Oversight protocols placed on one capability axis, registered by name in :data:`PROTOCOLS`.

A protocol turns an :class:`OversightSetting` (the game, the human's and the target's general Elo)
into a :class:`ChainBatch` of one or more candidate oversight chains; when there are several (a
hierarchy of optimal depth) the evaluator keeps the one with the highest exact success. Third-party
protocols register under the entry-point group ``cai2.protocols`` with a factory taking keyword
parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import Field, field_validator

from cai2.config import StrictModel, validate_with_location
from cai2.errors import ConfigError
from cai2.registry import Registry
from cai2.simulation._chain import ChainBatch, OversightChain, single_step_chain
from cai2.simulation._elo import OversightGame, elo_from_win_probability, elo_win_probability


@dataclass(frozen=True)
class OversightSetting:
    """Where oversight happens on the capability axis.

    Attributes:
        game: Domain-Elo curves of Guards and Houdinis.
        human_general_elo: General Elo of the trusted human overseer (the chain's level 0).
        target_general_elo: General Elo of the model to oversee (the chain's top level).
    """

    game: OversightGame
    human_general_elo: float
    target_general_elo: float

    @property
    def general_gap(self) -> float:
        """General-Elo gap between the target and the human."""
        return self.target_general_elo - self.human_general_elo


class OversightProtocol(Protocol):
    """What every protocol provides."""

    name: str

    def candidates(self, setting: OversightSetting) -> ChainBatch:
        """Candidate chains for ``setting``; the evaluator keeps the most successful one."""
        ...


class DirectHumanReviewConfig(StrictModel):
    """Direct human review: the human plays Guard against the target in one step.

    The human's domain Elo comes from the game's Guard curve at the human's general Elo, so the
    success is the one-step success of Engels et al. (2025). Human effort: one game per cycle.
    """


class HierarchyConfig(StrictModel):
    """The CAI 2.0 oversight hierarchy: nested AI overseers with humans at the top.

    Levels are evenly spaced in general Elo between the human and the target (Engels et al. 2025);
    the human oversees level 1 and each level oversees the next. Humans additionally review some
    levels: mandatory checkpoints every ``checkpoint_every`` levels and random spot-checks of the
    others. A human review catches a misaligned level with the human's own Guard-vs-Houdini win
    probability against that level.
    """

    depth: int | Literal["optimal"] = Field(
        "optimal",
        description="Number of oversight steps, or `optimal` for the depth that maximises the "
        "exact success at each point (searched over 1..`max_depth`).",
    )
    max_depth: int = Field(50, ge=1, le=500, description="Largest depth searched for `optimal`.")
    spot_check_rate: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Probability that a human also reviews a level (other than level 1, which the "
        "human oversees anyway, and the checkpoint levels) in a cycle.",
    )
    human_effort_budget: float | None = Field(
        None,
        ge=1.0,
        description="For `optimal`: only depths whose expected human oversight games per cycle "
        "(1 for overseeing level 1, plus checkpoints and spot-checks) stay within this budget. "
        "Without a budget, deeper chains keep buying success with more human checkpoints.",
    )
    checkpoint_every: int | None = Field(
        None,
        ge=1,
        description="A mandatory human review of levels k, 2k, 3k, ... (level 1 excepted, as the "
        "human oversees it anyway); null for no checkpoints.",
    )

    @field_validator("depth")
    @classmethod
    def _positive_depth(cls, depth: int | str) -> int | str:
        if isinstance(depth, int) and depth < 1:
            raise ValueError("`depth` must be at least 1 or `optimal`")
        return depth


class DebateConfig(StrictModel):
    """Debate: two copies of the target argue, a human judge picks the honest side.

    Judge accuracy is an Elo win probability: at the measured gap the judge's Elo advantage is the
    one that gives ``judge_accuracy``, and it changes by ``advantage_slope`` Elo per general-Elo
    point by which the debaters out-rank the judge beyond that gap. Human effort: one judgement per
    cycle.
    """

    judge_accuracy: float = Field(
        0.88,
        gt=0.0,
        lt=1.0,
        description="Judge accuracy at `measured_at_gap`. 0.88 is the accuracy of non-expert human "
        "judges of LLM debates on QuALITY in Khan et al. (2024), 'Debating with More Persuasive "
        "LLMs Leads to More Truthful Answers' (LLM judges: 0.76; naive baselines 0.60 / 0.48).",
    )
    measured_at_gap: float = Field(
        0.0,
        description="General-Elo gap (debaters minus judge) at which `judge_accuracy` holds. Khan "
        "et al. create the gap by information asymmetry, not capability, so it has no Elo value; "
        "0 places it at equal capability.",
    )
    advantage_slope: float = Field(
        0.0,
        description="Change of the judge's Elo advantage per general-Elo point of debater "
        "advantage. Khan et al. (2024) and Kenton et al. (2024), 'On scalable oversight with weak "
        "LLMs judging strong LLMs', find accuracy rising with debater strength, Kenton et al. "
        "only modestly; Engels et al. (2025) fit a nearly flat Houdini curve for Debate. 0 keeps "
        "the measured accuracy at every gap, an extrapolation far beyond any measurement.",
    )


class WeakToStrongConfig(StrictModel):
    """Weak-to-strong supervision: the human's labels train the strong target as its own overseer.

    The weak supervisor's accuracy is the human's Guard win probability against the target; the
    strong ceiling is a Guard of the target's own general Elo against the target; the trained
    overseer recovers the fraction ``performance_gap_recovered`` of the gap between them (PGR,
    Burns et al. 2023, 'Weak-to-Strong Generalization'). The trained overseer is an AI, so
    compromise applies to it.
    """

    performance_gap_recovered: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="PGR = (weak-to-strong − weak) / (strong ceiling − weak). Burns et al. (2023) "
        "report roughly 0.1 for ChatGPT reward modelling with naive finetuning (their task closest "
        "to learning an oversight judgement) and up to about 0.8 on NLP tasks with an auxiliary "
        "confidence loss.",
    )
    human_effort: float = Field(
        1.0,
        ge=0.0,
        description="Human oversight games per cycle spent producing the weak labels (1 = as "
        "many labels as direct review of every cycle would take).",
    )


class DirectHumanReview:
    """Registered as ``direct_human_review``; see :class:`DirectHumanReviewConfig`."""

    name = "direct_human_review"

    def __init__(self, config: DirectHumanReviewConfig | None = None) -> None:
        self.config = config or DirectHumanReviewConfig()

    def candidates(self, setting: OversightSetting) -> ChainBatch:
        """One step: the human guards the target."""
        catch = setting.game.guard_win_probability(
            setting.human_general_elo, setting.target_general_elo
        )
        return ChainBatch.stack(
            [single_step_chain(float(catch), overseer_is_ai=False, human_effort=1.0)]
        )


class Hierarchy:
    """Registered as ``hierarchy``; see :class:`HierarchyConfig`."""

    name = "hierarchy"

    def __init__(self, config: HierarchyConfig | None = None) -> None:
        self.config = config or HierarchyConfig()

    def depths(self) -> range:
        """The depths this hierarchy considers."""
        if self.config.depth == "optimal":
            return range(1, self.config.max_depth + 1)
        return range(self.config.depth, self.config.depth + 1)

    def checkpoint_levels(self, depth: int) -> set[int]:
        """Levels (1-based) with a mandatory human checkpoint."""
        every = self.config.checkpoint_every
        return set() if every is None else set(range(every, depth + 1, every)) - {1}

    def chain(self, setting: OversightSetting, depth: int) -> OversightChain:
        """The chain of ``depth`` evenly spaced levels."""
        game = setting.game
        elos = np.linspace(setting.human_general_elo, setting.target_general_elo, depth + 1)
        levels = np.arange(1, depth + 1)
        review = np.full(depth, self.config.spot_check_rate)
        review[0] = 0.0  # the human already oversees level 1
        for level in self.checkpoint_levels(depth):
            review[level - 1] = 1.0
        return OversightChain(
            overseer_catch=game.guard_win_probability(elos[:-1], elos[1:]),
            overseer_is_ai=levels > 1,
            human_review_probability=review,
            human_catch=game.guard_win_probability(setting.human_general_elo, elos[1:]),
        )

    def candidates(self, setting: OversightSetting) -> ChainBatch:
        """One chain per considered depth, built in one vectorised pass."""
        depths = np.arange(self.depths().start, self.depths().stop, dtype=np.int64)
        width = int(depths.max())
        levels = np.arange(1, width + 1)[None, :]
        active = levels <= depths[:, None]
        # General Elo of level j in a chain of depth n is human + gap·j/n (clamped in the padding).
        fraction = np.minimum(levels / depths[:, None], 1.0)
        below = np.minimum((levels - 1) / depths[:, None], 1.0)
        human, gap = setting.human_general_elo, setting.general_gap
        game = setting.game
        review = np.where(levels == 1, 0.0, self.config.spot_check_rate) * np.ones_like(fraction)
        every = self.config.checkpoint_every
        if every is not None:
            review = np.where((levels % every == 0) & (levels > 1), 1.0, review)
        batch = ChainBatch(
            overseer_catch=np.where(
                active,
                game.guard_win_probability(human + gap * below, human + gap * fraction),
                0.0,
            ),
            overseer_is_ai=active & (levels > 1),
            human_review_probability=np.where(active, review, 0.0),
            human_catch=np.where(
                active, game.guard_win_probability(human, human + gap * fraction), 0.0
            ),
            depths=depths,
            fixed_human_effort=np.zeros(depths.size),
        )
        budget = self.config.human_effort_budget
        if budget is None:
            return batch
        return batch.select(batch.human_effort <= budget + 1e-12)


class Debate:
    """Registered as ``debate``; see :class:`DebateConfig`."""

    name = "debate"

    def __init__(self, config: DebateConfig | None = None) -> None:
        self.config = config or DebateConfig()

    def judge_accuracy(self, general_gap: float) -> float:
        """Probability that the human judge picks the honest debater at ``general_gap``."""
        advantage = float(elo_from_win_probability(self.config.judge_accuracy))
        advantage += self.config.advantage_slope * (general_gap - self.config.measured_at_gap)
        return float(elo_win_probability(advantage, 0.0))

    def candidates(self, setting: OversightSetting) -> ChainBatch:
        """One step judged by the human."""
        catch = self.judge_accuracy(setting.general_gap)
        return ChainBatch.stack([single_step_chain(catch, overseer_is_ai=False, human_effort=1.0)])


class WeakToStrong:
    """Registered as ``weak_to_strong``; see :class:`WeakToStrongConfig`."""

    name = "weak_to_strong"

    def __init__(self, config: WeakToStrongConfig | None = None) -> None:
        self.config = config or WeakToStrongConfig()

    def overseer_accuracy(self, setting: OversightSetting) -> float:
        """Catch probability of the weakly supervised strong overseer."""
        game = setting.game
        weak = float(
            game.guard_win_probability(setting.human_general_elo, setting.target_general_elo)
        )
        strong = float(
            game.guard_win_probability(setting.target_general_elo, setting.target_general_elo)
        )
        return weak + self.config.performance_gap_recovered * (strong - weak)

    def candidates(self, setting: OversightSetting) -> ChainBatch:
        """One step by the trained AI overseer."""
        catch = self.overseer_accuracy(setting)
        chain = single_step_chain(catch, overseer_is_ai=True, human_effort=self.config.human_effort)
        return ChainBatch.stack([chain])


def _factory(cls: type, config_model: type[StrictModel]) -> Any:
    def build(**params: Any) -> OversightProtocol:
        config = validate_with_location(config_model, params)
        protocol: OversightProtocol = cls(config)
        return protocol

    build.__doc__ = (
        f"Build a `{cls.__name__}` from keyword parameters of `{config_model.__name__}`."
    )
    return build


PROTOCOLS: Registry[OversightProtocol] = Registry("protocols")
PROTOCOLS.register("direct_human_review", _factory(DirectHumanReview, DirectHumanReviewConfig))
PROTOCOLS.register("hierarchy", _factory(Hierarchy, HierarchyConfig))
PROTOCOLS.register("debate", _factory(Debate, DebateConfig))
PROTOCOLS.register("weak_to_strong", _factory(WeakToStrong, WeakToStrongConfig))


def build_protocol(name: str, params: dict[str, Any] | None = None) -> OversightProtocol:
    """The protocol registered as ``name``, configured with ``params``.

    Raises:
        ConfigError: for an unknown name or invalid parameters (the key names the parameter).
    """
    factory = PROTOCOLS.get(name)
    try:
        protocol: OversightProtocol = factory(**(params or {}))
    except ConfigError as exc:
        raise ConfigError(f"protocol `{name}`: {exc.message}", key=exc.key) from exc
    return protocol
