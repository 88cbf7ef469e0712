"""Fixtures for pipeline tests: the tiny random-weight model behind a call-counting wrapper."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from cai2.models import ChatModel, Conversation, Generation, GenerationParams, load_model


class CountingModel:
    """Passes calls to a real model and remembers which prompts it was asked to answer."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.prompts: list[str] = []

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams | None = None
    ) -> list[Generation]:
        self.prompts.extend(conversation[-1]["content"] for conversation in conversations)
        return self.inner.generate(conversations, params)

    def logprobs(
        self, conversations: Sequence[Conversation], continuations: Sequence[str]
    ) -> list[float]:
        return self.inner.logprobs(conversations, continuations)


@pytest.fixture(scope="session")
def tiny_model() -> ChatModel:
    """``hf:tiny``: real tokenizer and chat template, random weights, loaded once per session."""
    return load_model("hf:tiny")


@pytest.fixture
def counting_loader(
    tiny_model: ChatModel,
) -> tuple[Callable[[str], ChatModel], list[CountingModel]]:
    """A loader for ``run_recipe`` wrapping the tiny model; returns (loader, models it made)."""
    made: list[CountingModel] = []

    def loader(spec: str) -> ChatModel:
        assert spec == "hf:tiny", spec
        model = CountingModel(tiny_model)
        made.append(model)
        return model

    return loader, made


def _write_prompts(path: Path, count: int) -> Path:
    """A prompt file with ids p00, p01, ..."""
    with path.open("w") as out:
        for i in range(count):
            out.write(
                json.dumps({"id": f"p{i:02d}", "prompt": f"Question {i}: name a colour."}) + "\n"
            )
    return path


def _write_recipe(
    directory: Path, *, count: int = 10, batch_size: int = 4, max_tokens: int = 4
) -> Path:
    """A one-stage recipe generating on ``hf:tiny`` over ``count`` prompts."""
    _write_prompts(directory / "prompts.jsonl", count)
    path = directory / "recipe.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: tiny-run
            model: hf:tiny
            stages:
              - stage: generate
                config:
                  prompts: prompts.jsonl
                  batch_size: {batch_size}
                  params: {{max_tokens: {max_tokens}}}
            """
        ).lstrip()
    )
    return path


@pytest.fixture
def write_prompts() -> Callable[[Path, int], Path]:
    """``write_prompts(path, count)`` writes prompts with ids p00, p01, ..."""
    return _write_prompts


@pytest.fixture
def write_recipe() -> Callable[..., Path]:
    """``write_recipe(dir, count=, batch_size=, max_tokens=)`` writes ``recipe.yaml`` + prompts."""
    return _write_recipe
