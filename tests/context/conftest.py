"""Fixtures for the context-assessment tests.

Fast tests use a tiny random-weight BERT sentence encoder that shares MiniLM's real tokenizer and
sentence-transformers configuration, so every code path runs in seconds; tests marked ``slow`` use
the real all-MiniLM-L6-v2.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import cai2.context._default as default_module
from cai2.context import (
    ContextAssessor,
    LabelledPrompt,
    load_context_dataset,
    load_sentence_encoder,
    sentence_encoder_dir,
)

TINY_HIDDEN = 32


def build_tiny_encoder_dir(target: Path) -> Path:
    """A sentence-transformers directory with MiniLM's tokenizer and a tiny random BERT."""
    import torch
    from transformers import BertConfig, BertModel

    source = sentence_encoder_dir()
    target.mkdir(parents=True, exist_ok=True)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
    ):
        shutil.copy(source / name, target / name)
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text())
    pooling["word_embedding_dimension"] = TINY_HIDDEN
    (target / "1_Pooling").mkdir(exist_ok=True)
    (target / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    vocab_size = json.loads((source / "config.json").read_text())["vocab_size"]
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(target, safe_serialization=True)
    return target


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tiny random-weight sentence encoder with MiniLM's real tokenizer."""
    from sentence_transformers import SentenceTransformer

    directory = build_tiny_encoder_dir(tmp_path_factory.mktemp("tiny-encoder"))
    return SentenceTransformer(str(directory), device="cpu", local_files_only=True)


@pytest.fixture(scope="session")
def dataset() -> list[LabelledPrompt]:
    """The built-in labelled prompt set."""
    return load_context_dataset()


@pytest.fixture(scope="session")
def tiny_assessor(tiny_encoder: Any, dataset: list[LabelledPrompt]) -> ContextAssessor:
    """An assessor fitted on the train split with the tiny encoder (2 folds, one C, for speed)."""
    return ContextAssessor.fit(tiny_encoder, dataset, folds=2, c_grid=(4.0,))


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The real all-MiniLM-L6-v2 encoder."""
    return load_sentence_encoder()


@pytest.fixture(scope="session")
def minilm_assessor(minilm: Any) -> ContextAssessor:
    """The real default assessor (train split only; trained on first use, then cached)."""
    return default_module.load_default_assessor()


@pytest.fixture(scope="session")
def trained_home(
    tiny_encoder: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str], ContextAssessor]:
    """A ``CAI2_HOME`` where the default assessor (tiny encoder) was trained once and cached."""
    home = tmp_path_factory.mktemp("cai2-home")
    messages: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CAI2_HOME", str(home))
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
    monkeypatch.setattr(default_module, "load_context_encoder", lambda spec: tiny_encoder)
    monkeypatch.setattr(default_module, "_default", {})
    return trained_home[0]
