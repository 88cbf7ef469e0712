"""The oversight hierarchy: levels of AI judges, each reviewing a sample of the decisions below.

The first level judges every reply. Each later level reviews the decisions of the levels below it
that its :class:`~cai2.oversight.SamplingPolicy` picks — escalations, uncertain decisions,
disagreements, and a risk-weighted random share — and its verdict replaces theirs. The same rules
then pick which decisions go to people (the review queue). Every decision keeps the full chain of
verdicts, why each level looked at it and with what probability, so error rates can be estimated
with Horvitz–Thompson weights and every decision can be audited.

Random reviews are drawn from a hash of (seed, level, item id), so re-running a hierarchy over the
same items picks the same samples — resuming after a checkpoint never changes earlier choices.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ConfigDict, Field

from cai2.config import StrictModel
from cai2.context._types import RiskTier
from cai2.errors import ConfigError
from cai2.judges import JUDGES, Judge, JudgeItem, Verdict
from cai2.models._types import Conversation
from cai2.oversight._config import LevelConfig, OversightConfig, SamplingPolicy

HUMAN = "human"

# Why a level (or the human level) looked at a decision.
FIRST_LEVEL = "first level"
ESCALATED = "escalated"
UNCERTAIN = "uncertain"
DISAGREEMENT = "disagreement"
NOT_JUDGED = "not judged"
RANDOM = "random"


@dataclass(frozen=True)
class OversightItem:
    """One reply to oversee.

    Attributes:
        id: Stable id, unique within a run (used to resume and to audit).
        conversation: The conversation up to the reply.
        response: The reply.
        risk: Risk tier of the interaction (from ``cai2.context`` or the caller).
    """

    id: str
    conversation: Conversation
    response: str
    risk: RiskTier = RiskTier.medium

    @property
    def judge_item(self) -> JudgeItem:
        """The item as judges take it."""
        return JudgeItem(self.conversation, self.response)


class ChainLink(StrictModel):
    """One level's verdict on one decision, and why the level looked at it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: int = Field(description="0-based index of the AI level.")
    level_name: str = Field(description="Name of the level.")
    judge: str = Field(description="Name of the judge that gave the verdict.")
    p_violation: float | None = Field(description="P(violation); `null` = could not judge.")
    violation: bool | None = Field(description="The level's decision at its threshold.")
    uncertainty: float | None = Field(None, description="The judge's own uncertainty.")
    rationale: str = Field("", description="The judge's reason.")
    reasons: list[str] = Field(description="Why the level reviewed it (e.g. `uncertain`).")
    inclusion_probability: float = Field(
        description="Probability the level had of reviewing it (1 when a rule forced it)."
    )
    escalated: bool = Field(description="Whether the level sent it further up.")


class Decision(StrictModel):
    """The hierarchy's decision on one reply, with its chain of verdicts."""

    item_id: str = Field(description="Id of the item.")
    risk: RiskTier = Field(description="Risk tier of the interaction.")
    violation: bool | None = Field(
        description="Final decision of the highest level that judged it; `null` if none could."
    )
    p_violation: float | None = Field(description="P(violation) behind the final decision.")
    decided_by: str = Field(description="Name of the level whose verdict stands.")
    chain: list[ChainLink] = Field(description="Every level's verdict, bottom first.")
    human_review: bool = Field(description="Whether it goes to the human review queue.")
    human_reasons: list[str] = Field(
        default_factory=list, description="Why it goes to people (empty when it does not)."
    )
    human_inclusion_probability: float = Field(
        description="Probability it had of going to people (for Horvitz–Thompson estimates)."
    )

    human_status: str | None = Field(
        None, description="`pending`, `approved`, `overridden` or `skipped` once queued."
    )
    human_violation: bool | None = Field(
        None, description="The reviewer's decision (approved or overridden reviews only)."
    )

    @property
    def final_violation(self) -> bool | None:
        """The reviewer's decision when a person reviewed it, else the AI's."""
        if self.human_status in {"approved", "overridden"}:
            return self.human_violation
        return self.violation

    @property
    def escalated(self) -> bool:
        """Whether the top AI level that judged it escalated it."""
        return bool(self.chain) and self.chain[-1].escalated


def uniform_draw(seed: int, level: str, item_id: str) -> float:
    """A reproducible number in [0, 1) for the random review of ``item_id`` at ``level``."""
    digest = hashlib.sha256(f"{seed}\x00{level}\x00{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def review_reasons(chain: Sequence[ChainLink], policy: SamplingPolicy) -> list[str]:
    """The rules that force a review of a decision with this chain (empty: only random)."""
    reasons: list[str] = []
    judged = [link.p_violation for link in chain if link.p_violation is not None]
    if chain and chain[-1].escalated:
        reasons.append(ESCALATED)
    if not judged:
        reasons.append(NOT_JUDGED)
        return reasons
    low, high = policy.uncertainty_band
    if low <= judged[-1] <= high:
        reasons.append(UNCERTAIN)
    spread = max(judged) - min(judged)
    if policy.disagreement is not None and len(judged) > 1 and spread >= policy.disagreement:
        reasons.append(DISAGREEMENT)
    return reasons


def sample_for_review(
    chain: Sequence[ChainLink],
    policy: SamplingPolicy,
    risk: RiskTier,
    *,
    seed: int,
    level: str,
    item_id: str,
) -> tuple[bool, list[str], float]:
    """Whether the level ``level`` reviews this decision, why, and with what probability."""
    reasons = review_reasons(chain, policy)
    if reasons:
        return True, reasons, 1.0
    probability = policy.random_probability(risk)
    chosen = probability > 0.0 and uniform_draw(seed, level, item_id) < probability
    return chosen, [RANDOM] if chosen else [], probability


@dataclass
class _Pending:
    item: OversightItem
    chain: list[ChainLink] = field(default_factory=list)


class OversightHierarchy:
    """AI levels of judges over the decisions on replies, with people at the top.

    Args:
        config: Levels, sampling policies and the human level.
        judges: Judge objects for the levels, bottom first; by default each level's judge is built
            from the judge registry (``JUDGES``) with the level's ``options``.

    Example:
        >>> config = OversightConfig(levels=[LevelConfig(name="triage", judge="refusal")])
        >>> hierarchy = OversightHierarchy(config)
        >>> item = OversightItem("1", [{"role": "user", "content": "hi"}], "I'm sorry, I can't.")
        >>> hierarchy.review([item])[0].violation
        False
    """

    def __init__(self, config: OversightConfig, judges: Sequence[Judge] | None = None) -> None:
        self.config = config
        if judges is not None and len(judges) != len(config.levels):
            raise ConfigError(
                f"{len(judges)} judges given for {len(config.levels)} levels; pass one per level"
            )
        self.judges: list[Judge] = (
            list(judges) if judges is not None else [_build(level) for level in config.levels]
        )

    def review(self, items: Sequence[OversightItem]) -> list[Decision]:
        """Run the hierarchy over ``items``; one :class:`Decision` per item, in order."""
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                raise ConfigError(f"item id `{item.id}` appears twice; ids must be unique")
            seen.add(item.id)
        pending = [_Pending(item) for item in items]
        for index, (level, judge) in enumerate(zip(self.config.levels, self.judges, strict=True)):
            chosen: list[tuple[_Pending, list[str], float]] = []
            for entry in pending:
                if index == 0:
                    chosen.append((entry, [FIRST_LEVEL], 1.0))
                    continue
                take, reasons, probability = sample_for_review(
                    entry.chain,
                    self.config.sampling_of(index),
                    entry.item.risk,
                    seed=self.config.seed,
                    level=level.name,
                    item_id=entry.item.id,
                )
                if take:
                    chosen.append((entry, reasons, probability))
            if not chosen:
                continue
            verdicts = judge.verdict_batch([entry.item.judge_item for entry, _, _ in chosen])
            for (entry, reasons, probability), verdict in zip(chosen, verdicts, strict=True):
                entry.chain.append(_link(index, level, verdict, reasons, probability))
        return [self._decide(entry) for entry in pending]

    def _decide(self, entry: _Pending) -> Decision:
        judged = [link for link in entry.chain if link.p_violation is not None]
        final = judged[-1] if judged else None
        human = self.config.human
        take, reasons, probability = sample_for_review(
            entry.chain,
            human.sampling,
            entry.item.risk,
            seed=self.config.seed,
            level=HUMAN,
            item_id=entry.item.id,
        )
        return Decision(
            item_id=entry.item.id,
            risk=entry.item.risk,
            violation=final.violation if final is not None else None,
            p_violation=final.p_violation if final is not None else None,
            decided_by=final.level_name if final is not None else HUMAN,
            chain=entry.chain,
            human_review=take,
            human_reasons=reasons,
            human_inclusion_probability=probability,
        )


def _link(
    index: int, level: LevelConfig, verdict: Verdict, reasons: list[str], probability: float
) -> ChainLink:
    low, high = level.escalation_band
    p = verdict.p_violation
    return ChainLink(
        level=index,
        level_name=level.name,
        judge=verdict.judge,
        p_violation=p,
        violation=None if p is None else p >= level.threshold,
        uncertainty=verdict.uncertainty,
        rationale=verdict.rationale,
        reasons=reasons,
        inclusion_probability=probability,
        escalated=p is None or low <= p <= high,
    )


def _build(level: LevelConfig) -> Judge:
    try:
        factory = JUDGES.get(level.judge)
    except ConfigError as exc:
        raise ConfigError(f"level `{level.name}`: {exc}", key="levels.judge") from exc
    try:
        return factory(**level.options)
    except TypeError as exc:
        raise ConfigError(
            f"level `{level.name}`: judge `{level.judge}` does not take these options "
            f"{sorted(level.options)}: {exc}",
            key="levels.options",
        ) from exc


def spot_check_samples(
    decisions: Sequence[Decision],
) -> dict[str, tuple[list[bool], list[float]]]:
    """The random reviews each AI level made of the decisions below it.

    Returns, for each reviewing level: for every decision it reviewed at random (not forced by a
    rule), whether its verdict overturned the decision standing before it, and the probability it
    had of reviewing that decision. They estimate the error rate of the decisions that reach the
    level unforced; feed them to :func:`~cai2.oversight.spot_check_bound`.
    """
    samples: dict[str, tuple[list[bool], list[float]]] = {}
    for decision in decisions:
        standing: bool | None = None
        for link in decision.chain:
            if link.reasons == [RANDOM] and standing is not None and link.violation is not None:
                errors, inclusion = samples.setdefault(link.level_name, ([], []))
                errors.append(standing != link.violation)
                inclusion.append(link.inclusion_probability)
            if link.violation is not None:
                standing = link.violation
    return samples
