"""Configuration of an oversight hierarchy: its AI levels, how each samples, and the human top.

One :class:`OversightConfig` feeds the Python API, ``cai2 oversee --config`` and recipes. Every AI
level names a judge from :data:`cai2.judges.JUDGES`; the first level judges every decision, each
later level reviews a sample of the decisions below it, and the human level reviews a sample of the
top AI level's decisions through the review queue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from cai2.config import StrictModel, load_yaml_model
from cai2.context._types import RiskTier
from cai2.oversight._stats import BoundMethod

Band = tuple[float, float]


def _check_band(band: Band, name: str) -> Band:
    low, high = band
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"`{name}` must be two probabilities [low, high] with low ≤ high")
    return band


class SamplingPolicy(StrictModel):
    """Which decisions of the level below a level reviews.

    A decision is reviewed for sure (inclusion probability 1) when the level below escalated it,
    when its probability lies in ``uncertainty_band``, when the levels so far disagree by at least
    ``disagreement``, or when nobody could judge it. Every other decision is reviewed at random with
    probability ``random_share × risk_weights[tier]`` (capped at 1); that probability is recorded so
    error rates can be estimated with Horvitz–Thompson weights.
    """

    uncertainty_band: Band = Field(
        (0.25, 0.75),
        description="P(violation) range of the current decision that is always reviewed.",
    )
    disagreement: float | None = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description=(
            "Spread (max − min) of the P(violation)s in the chain so far at which a decision is "
            "always reviewed; `null` turns the rule off."
        ),
    )
    risk_weights: dict[RiskTier, float] = Field(
        default_factory=lambda: {
            RiskTier.low: 1.0,
            RiskTier.medium: 2.0,
            RiskTier.high: 4.0,
            RiskTier.critical: 10.0,
        },
        description="Multiplier of `random_share` per risk tier (a missing tier counts 1).",
    )
    random_share: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Probability of a random review when no rule forces one (× risk weight).",
    )

    @field_validator("uncertainty_band")
    @classmethod
    def _band(cls, band: Band) -> Band:
        return _check_band(band, "uncertainty_band")

    @field_validator("risk_weights")
    @classmethod
    def _weights(cls, weights: dict[RiskTier, float]) -> dict[RiskTier, float]:
        negative = [tier.value for tier, w in weights.items() if w < 0]
        if negative:
            raise ValueError(f"risk weights must be ≥ 0; negative for {negative}")
        return weights

    def random_probability(self, tier: RiskTier) -> float:
        """Probability of a random review for a decision of risk ``tier`` that no rule forces."""
        return min(1.0, self.random_share * self.risk_weights.get(tier, 1.0))


class LevelConfig(StrictModel):
    """One level of AI overseers: a judge, which decisions it reviews, and when it escalates."""

    name: str = Field(min_length=1, description="Name of the level, shown in chains and reports.")
    judge: str = Field(description="Registered judge name (see `cai2.judges.JUDGES`).")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments for the judge factory, e.g. `path`."
    )
    sampling: SamplingPolicy | None = Field(
        None,
        description=(
            "Which decisions of the level below it reviews; must be left out for the first level, "
            "which judges every decision (default for later levels: the defaults above)."
        ),
    )
    escalation_band: Band = Field(
        (0.3, 0.7),
        description="Its own P(violation) range in which it escalates the decision upward.",
    )
    threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="P(violation) at or above which it decides `violation`."
    )

    @field_validator("escalation_band")
    @classmethod
    def _band(cls, band: Band) -> Band:
        return _check_band(band, "escalation_band")


class HumanLevelConfig(StrictModel):
    """The top of the hierarchy: people working through the review queue, and the checkpoints."""

    sampling: SamplingPolicy = Field(
        default_factory=lambda: SamplingPolicy(random_share=0.02),
        description="Which decisions of the top AI level go to the human review queue.",
    )
    checkpoint_every: int = Field(
        200,
        ge=1,
        description=(
            "K: after this many decisions since the last cleared checkpoint the pipeline stops "
            "until the queue is empty."
        ),
    )
    max_undetected_error: float = Field(
        0.1,
        gt=0.0,
        lt=1.0,
        description=(
            "Upper bound on the AI's undetected error rate (from human spot-checks) above which "
            "the pipeline stops for a checkpoint."
        ),
    )
    min_spot_checks: int = Field(
        20, ge=1, description="Random spot-checks needed before the bound is tested."
    )
    confidence: float = Field(0.95, gt=0.0, lt=1.0, description="Confidence of the bounds.")
    bound_method: BoundMethod = Field(
        "clopper-pearson", description="Interval for the bounds: `clopper-pearson` or `wilson`."
    )


class OversightConfig(StrictModel):
    """A hierarchy of AI levels (bottom first) with people at the top."""

    levels: list[LevelConfig] = Field(
        min_length=1, description="AI levels, bottom (judges everything) first."
    )
    human: HumanLevelConfig = Field(
        default_factory=HumanLevelConfig, description="The human level and its checkpoints."
    )
    seed: int = Field(
        0, description="Seed of the random reviews (the same item is sampled the same way)."
    )

    @model_validator(mode="after")
    def _levels(self) -> OversightConfig:
        if self.levels[0].sampling is not None:
            raise ValueError(
                f"level `{self.levels[0].name}` is the first level and judges every decision; "
                "remove its `sampling`"
            )
        names = [level.name for level in self.levels]
        duplicates = sorted({n for n in names if names.count(n) > 1} | ({"human"} & set(names)))
        if duplicates:
            raise ValueError(f"level names must be unique and not `human`; repeated: {duplicates}")
        return self

    def sampling_of(self, index: int) -> SamplingPolicy:
        """The sampling policy of AI level ``index`` (≥ 1)."""
        return self.levels[index].sampling or SamplingPolicy()


def load_oversight_config(path: str | Path) -> OversightConfig:
    """Read an oversight config from YAML (errors name file, line and key)."""
    return load_yaml_model(path, OversightConfig)
