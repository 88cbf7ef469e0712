"""Fixtures for the critique engine: the tiny model wrapped to count calls, a fixed assessor."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from cai2.context import Context, RiskTier
from cai2.models import Conversation, Generation, GenerationParams, load_model
from cai2.models._hf import HFChatModel


@pytest.fixture(scope="session")
def tiny() -> HFChatModel:
    """The tiny random-weight model with the real SmolLM2 tokenizer."""
    model = load_model("hf:tiny", batch_size=8)
    assert isinstance(model, HFChatModel)
    return model


class CountingModel:
    """A real model that records the size of every ``generate`` call it forwards."""

    def __init__(self, model: HFChatModel) -> None:
        self.model = model
        self.spec = model.spec
        self.calls: list[int] = []

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams | None = None
    ) -> list[Generation]:
        self.calls.append(len(conversations))
        return self.model.generate(conversations, params)

    def logprobs(
        self, conversations: Sequence[Conversation], continuations: Sequence[str]
    ) -> list[float]:
        return self.model.logprobs(conversations, continuations)


@pytest.fixture
def counting(tiny: HFChatModel) -> CountingModel:
    """The tiny model behind a call counter."""
    return CountingModel(tiny)


class FixedAssessor:
    """Assesses every prompt as the given context (the real assessor is tested in tests/context)."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def assess_batch(self, prompts: Sequence[object]) -> list[Context]:
        return [self.context for _ in prompts]


@pytest.fixture
def high_risk_health() -> FixedAssessor:
    """High risk, healthcare domain, high complexity: deep layers and sub-principles switch on."""
    return FixedAssessor(Context(risk=RiskTier.high, domains=["healthcare"], complexity=0.9))
