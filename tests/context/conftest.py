"""Fixtures for the context-assessment tests.

Fast tests use the tiny random-weight BERT sentence encoder of the root ``conftest.py``
(``tiny_encoder``, ``tiny_assessor``), which shares MiniLM's real tokenizer and
sentence-transformers configuration, so every code path runs in seconds; tests marked ``slow`` use
the real all-MiniLM-L6-v2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cai2.context._default as default_module
from cai2.context import (
    DEFAULT_ENCODER,
    ContextAssessor,
    EncoderSpec,
    load_sentence_encoder,
)

FROZEN_SPEC = EncoderSpec(layers=6)
"""The spec the ``trained_home`` fixtures pretend is the default: heads on a frozen encoder (the
tiny one stands in for it); ``test_finetune.py`` covers the fine-tuned default."""


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The real all-MiniLM-L6-v2 encoder."""
    return load_sentence_encoder()


@pytest.fixture(scope="session")
def minilm_assessor(minilm: Any) -> ContextAssessor:
    """The shipped default assessor (train split only; fine-tuned on first use, then cached).

    Named explicitly: the root ``conftest.py`` puts the frozen encoder in its place elsewhere.
    """
    return default_module.load_default_assessor(spec=DEFAULT_ENCODER)


@pytest.fixture(scope="session")
def trained_home(
    tiny_encoder: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str], ContextAssessor]:
    """A ``CAI2_HOME`` where the default assessor (tiny encoder) was trained once and cached."""
    home = tmp_path_factory.mktemp("cai2-home")
    messages: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAI2_HOME", str(home))
        patch.setattr(default_module, "DEFAULT_ENCODER", FROZEN_SPEC)
        patch.setattr(default_module, "load_context_encoder", lambda spec: tiny_encoder)
        patch.setattr(default_module, "_default", {})
        assessor = default_module.load_default_assessor(progress=messages.append)
    return home, messages, assessor


@pytest.fixture
def use_trained_home(
    trained_home: tuple[Path, list[str], ContextAssessor],
    tiny_encoder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Point cai2 at :func:`trained_home` with a cold in-memory memo (as in a new process)."""
    monkeypatch.setenv("CAI2_HOME", str(trained_home[0]))
    monkeypatch.setattr(default_module, "DEFAULT_ENCODER", FROZEN_SPEC)
    monkeypatch.setattr(default_module, "load_context_encoder", lambda spec: tiny_encoder)
    monkeypatch.setattr(default_module, "_default", {})
    return trained_home[0]
