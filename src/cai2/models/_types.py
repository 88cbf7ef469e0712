"""The model protocol every backend implements, and the values it passes around."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict, runtime_checkable

import numpy as np
from pydantic import Field

from cai2.config import StrictModel


class Message(TypedDict):
    """One chat turn, as in the OpenAI chat format."""

    role: Literal["system", "user", "assistant"]
    content: str


Conversation = list[Message]


class GenerationParams(StrictModel):
    """Sampling settings shared by every backend."""

    max_tokens: int = Field(128, ge=1, le=32768, description="Most new tokens per response.")
    temperature: float = Field(
        0.0, ge=0.0, le=5.0, description="Sampling temperature; 0 means greedy decoding."
    )
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    stop: list[str] = Field(
        default_factory=list, description="Strings that end a response; they are not returned."
    )
    seed: int | None = Field(
        0, description="Random seed for sampling; the same seed gives the same samples."
    )


@dataclass(frozen=True)
class Generation:
    """One response from a model."""

    text: str
    finish_reason: Literal["stop", "length", "error"]
    prompt_tokens: int
    completion_tokens: int


@runtime_checkable
class ChatModel(Protocol):
    """What every backend offers: batched chat generation and continuation log-probabilities."""

    spec: str
    """The spec string the model was built from, e.g. ``hf:smollm2-135m``."""

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams | None = None
    ) -> list[Generation]:
        """Generate one assistant reply per conversation, in order."""
        ...

    def logprobs(
        self, conversations: Sequence[Conversation], continuations: Sequence[str]
    ) -> list[float]:
        """Sum of token log-probabilities of each continuation as the assistant's reply.

        ``continuations[i]`` is scored as the start of the assistant turn that follows
        ``conversations[i]``.
        """
        ...


@runtime_checkable
class LocalChatModel(ChatModel, Protocol):
    """A model whose activations can be read (the ``hf`` backend)."""

    def hidden_states(self, conversations: Sequence[Conversation], layer: int = -1) -> np.ndarray:
        """Mean-pooled hidden state of each conversation at ``layer``: shape (n, hidden_size)."""
        ...
