"""The judge protocol and the values judges return.

A judge answers two questions about a model's reply: does it violate the constitution
(:meth:`Judge.verdict`), and which of two replies follows it better (:meth:`Judge.compare`). Every
answer is a probability so an oversight hierarchy can stack judges, and ``None`` means "could not
judge", which is different from "safe".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pydantic import ConfigDict, Field, model_validator

from cai2.config import StrictModel
from cai2.errors import DataError
from cai2.models._types import Conversation, Message

Prompt = str | Conversation
"""A user prompt: a plain string (one user turn) or a whole conversation up to the reply."""


@runtime_checkable
class PrincipleLike(Protocol):
    """What a judge needs from a principle (``cai2.constitution.Principle`` satisfies it)."""

    @property
    def id(self) -> str:
        """Unique id of the principle."""
        ...

    @property
    def statement(self) -> str:
        """The rule in one or two sentences."""
        ...


@dataclass(frozen=True)
class JudgeItem:
    """One reply to judge: the conversation that led to it and the reply itself."""

    conversation: Conversation
    response: str

    @classmethod
    def of(cls, prompt: Prompt, response: str) -> JudgeItem:
        """Build an item from a prompt string or a conversation."""
        return cls(as_conversation(prompt), response)

    @property
    def prompt_text(self) -> str:
        """The last user turn, which is what most judges condition on."""
        for message in reversed(self.conversation):
            if message["role"] == "user":
                return message["content"]
        return ""


def as_conversation(prompt: Prompt) -> Conversation:
    """A conversation from a prompt string (one user turn) or a conversation (copied)."""
    if isinstance(prompt, str):
        return [Message(role="user", content=prompt)]
    if not isinstance(prompt, list) or not all(
        isinstance(m, dict) and "role" in m and "content" in m for m in prompt
    ):
        raise DataError(
            "a judge prompt must be a string or a list of {'role', 'content'} messages; "
            f"got {type(prompt).__name__}"
        )
    return list(prompt)


def binary_entropy(p: float) -> float:
    """Entropy in bits of a Bernoulli(p): 0 when certain, 1 at p = 0.5."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1.0 - p) * math.log2(1.0 - p))


class Verdict(StrictModel):
    """A judge's answer about one reply.

    Probabilities are of a violation; ``None`` means the judge could not judge (a principle it has
    no model of, a backend that returned no usable scores). A hierarchy escalates ``None`` rather
    than treating it as safe.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    judge: str = Field(description="Name of the judge that gave the verdict.")
    p_violation: float | None = Field(
        ge=0.0, le=1.0, description="Probability that the reply violates the constitution."
    )
    per_principle: dict[str, float | None] = Field(
        default_factory=dict,
        description=(
            "Probability of violating each principle the judge judged separately, by principle id; "
            "empty for judges of one fixed concept (trained heads, the refusal detector)."
        ),
    )
    uncertainty: float | None = Field(
        None,
        ge=0.0,
        description=(
            "How unsure the judge is (higher = less sure); defaults to the binary entropy of "
            "`p_violation` in bits. Ensembles add the spread between their members."
        ),
    )
    rationale: str = Field("", description="Why the judge decided so, in words.")

    @model_validator(mode="after")
    def _default_uncertainty(self) -> Verdict:
        if self.uncertainty is None and self.p_violation is not None:
            object.__setattr__(self, "uncertainty", binary_entropy(self.p_violation))
        return self

    @property
    def judged(self) -> bool:
        """Whether the judge gave a probability at all."""
        return self.p_violation is not None

    @property
    def confidence(self) -> float | None:
        """Distance from a coin flip, 0 (p = 0.5) to 1 (p = 0 or 1)."""
        return None if self.p_violation is None else abs(2.0 * self.p_violation - 1.0)


@runtime_checkable
class Judge(Protocol):
    """What every judge offers. Batched methods are the primary ones; the single ones wrap them."""

    name: str
    """Registry name or a descriptive label, recorded in every verdict."""

    def verdict(
        self, conversation: Prompt, response: str, principles: Sequence[PrincipleLike] = ()
    ) -> Verdict:
        """Judge one reply against ``principles`` (judges of one concept ignore them)."""
        ...

    def verdict_batch(
        self, items: Sequence[JudgeItem], principles: Sequence[PrincipleLike] = ()
    ) -> list[Verdict]:
        """Judge many replies; one verdict per item, in order."""
        ...

    def compare(
        self, prompt: Prompt, a: str, b: str, principles: Sequence[PrincipleLike] = ()
    ) -> float | None:
        """P(``a`` ≻ ``b``): the probability that reply ``a`` follows the principles better."""
        ...

    def compare_batch(
        self,
        items: Sequence[tuple[Prompt, str, str]],
        principles: Sequence[PrincipleLike] = (),
    ) -> list[float | None]:
        """Many comparisons ``(prompt, a, b)``; one P(a ≻ b) or ``None`` per item."""
        ...


def preference_from_violations(p_a: float | None, p_b: float | None) -> float | None:
    """P(a ≻ b) from two violation probabilities, assuming independent verdicts.

    It is the probability that ``a`` is the one without a violation given that exactly one of them
    violates, so swapping ``a`` and ``b`` gives ``1 - p`` and equal inputs give 0.5.
    """
    if p_a is None or p_b is None:
        return None
    a_better = (1.0 - p_a) * p_b
    b_better = (1.0 - p_b) * p_a
    total = a_better + b_better
    return 0.5 if total <= 0.0 else a_better / total


class JudgeBase:
    """Shared plumbing: the single-item methods call the batched ones, and a judge that only gives
    verdicts compares two replies through :func:`preference_from_violations`."""

    name: str = "judge"

    def verdict_batch(
        self, items: Sequence[JudgeItem], principles: Sequence[PrincipleLike] = ()
    ) -> list[Verdict]:
        """Judge many replies; subclasses implement this."""
        raise NotImplementedError

    def verdict(
        self, conversation: Prompt, response: str, principles: Sequence[PrincipleLike] = ()
    ) -> Verdict:
        """Judge one reply."""
        return self.verdict_batch([JudgeItem.of(conversation, response)], principles)[0]

    def compare_batch(
        self,
        items: Sequence[tuple[Prompt, str, str]],
        principles: Sequence[PrincipleLike] = (),
    ) -> list[float | None]:
        """Compare pairs by judging each reply on its own."""
        flat: list[JudgeItem] = []
        for prompt, a, b in items:
            flat += [JudgeItem.of(prompt, a), JudgeItem.of(prompt, b)]
        verdicts = self.verdict_batch(flat, principles)
        return [
            preference_from_violations(verdicts[2 * i].p_violation, verdicts[2 * i + 1].p_violation)
            for i in range(len(items))
        ]

    def compare(
        self, prompt: Prompt, a: str, b: str, principles: Sequence[PrincipleLike] = ()
    ) -> float | None:
        """P(``a`` ≻ ``b``) for one pair."""
        return self.compare_batch([(prompt, a, b)], principles)[0]
