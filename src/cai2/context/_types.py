"""The context of one interaction: how risky, which domains, how complex, and why."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from cai2.config import StrictModel


class RiskTier(StrEnum):
    """Ordered risk tiers; compare with :meth:`rank`."""

    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        """0 for low … 3 for critical."""
        return list(RiskTier).index(self)


class Evidence(StrictModel):
    """One reason behind an assessment, e.g. a matched rule or a classifier probability."""

    source: str = Field(description="What produced it: `rule`, `classifier`, `llm`, or `user`.")
    detail: str = Field(description="Human-readable explanation.")
    weight: float | None = Field(None, description="Probability or score, when there is one.")


class Context(StrictModel):
    """What the context assessment found about one prompt or conversation."""

    risk: RiskTier = Field(RiskTier.low, description="Risk tier of the interaction.")
    domains: list[str] = Field(
        default_factory=list, description="Domains touched, e.g. `healthcare`, `finance`."
    )
    complexity: float = Field(
        0.0, ge=0.0, le=1.0, description="0 = simple factual request, 1 = long multi-step task."
    )
    evidence: list[Evidence] = Field(
        default_factory=list, description="Why the assessment came out this way."
    )
