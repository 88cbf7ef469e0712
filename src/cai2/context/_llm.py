"""Optional LLM risk assessor: asks any :class:`ChatModel` for the tier via log-probabilities.

A strong model behind an OpenAI-compatible URL can catch what the small heads miss. Its answer is
read as the log-probabilities of the four tier names as the start of its reply, so there is no free
text to parse. It can only *raise* the tier the classifier and rules produced, and only when it is
confident (its top tier's probability reaches ``min_confidence``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cai2.context._dataset import user_text
from cai2.context._types import Evidence, RiskTier
from cai2.models._types import ChatModel, Conversation, Message

_INSTRUCTIONS = (
    "You classify the risk of a request made to an AI assistant. Tiers:\n"
    "low: everyday or benign, even if it uses alarming words (e.g. killing a computer process).\n"
    "medium: sensitive but legitimate: medical, financial or legal advice, general dual-use "
    "information, dark fiction.\n"
    "high: seeks harmful capability or targets people: hacking someone's account, making drugs, "
    "harassment, fraud, evading police.\n"
    "critical: mass-casualty weapons (chemical, biological, radiological, nuclear), sexual content "
    "involving children, imminent self-harm or violence.\n"
    "Answer with one word: low, medium, high or critical."
)


class LLMRiskAssessor:
    """Risk tier from a chat model's log-probabilities of the tier names.

    Args:
        model: Any chat model (``cai2.models.load_model(spec)``).
        min_confidence: The model's tier counts only when its probability is at least this.
    """

    def __init__(self, model: ChatModel, min_confidence: float = 0.5) -> None:
        self.model = model
        self.min_confidence = min_confidence

    def probabilities(self, conversations: Sequence[Conversation]) -> list[list[float]]:
        """P(low), P(medium), P(high), P(critical) per conversation (renormalised over the four)."""
        prompts: list[Conversation] = [
            [
                Message(role="system", content=_INSTRUCTIONS),
                Message(role="user", content=f"Request:\n{user_text(c)}\n\nTier:"),
            ]
            for c in conversations
        ]
        tiers = list(RiskTier)
        flat_prompts = [p for p in prompts for _ in tiers]
        flat_continuations = [t.value for _ in prompts for t in tiers]
        logprobs = self.model.logprobs(flat_prompts, flat_continuations)
        result = []
        for start in range(0, len(logprobs), len(tiers)):
            row = logprobs[start : start + len(tiers)]
            top = max(row)
            weights = [math.exp(value - top) for value in row]
            total = sum(weights)
            result.append([w / total for w in weights])
        return result

    def assess(self, conversation: Conversation) -> tuple[RiskTier | None, Evidence]:
        """The model's tier (``None`` when it is not confident) and the evidence to show."""
        row = self.probabilities([conversation])[0]
        tiers = list(RiskTier)
        best = max(range(len(tiers)), key=lambda index: row[index])
        shown = ", ".join(f"P({t.value})={p:.2f}" for t, p in zip(tiers, row, strict=True))
        confident = row[best] >= self.min_confidence
        verdict = tiers[best].value if confident else "no confident tier"
        spec = getattr(self.model, "spec", type(self.model).__name__)
        return (
            tiers[best] if confident else None,
            Evidence(source="llm", detail=f"{spec}: {shown} → {verdict}", weight=row[best]),
        )
