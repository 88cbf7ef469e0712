"""Continued pre-training on a tagged corpus: the loss falls, weights change, the model loads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from cai2.judges import build_judge
from cai2.models import load_model, tiny_model_dir
from cai2.models._hf import HFChatModel
from cai2.pipeline import (
    ALIGNED_TOKEN,
    CorpusSettings,
    PretrainSettings,
    build_corpus,
    score_corpus,
    train_pretrain,
)
from cai2.pipeline._pretrain_corpus import iter_text_file

# A high rate over a repetitive corpus so that a few steps visibly lower the loss.
FAST = {"batch_size": 3, "learning_rate": 5e-3, "group_by_length": True}


@pytest.fixture
def scored(chat_corpus: Path) -> Path:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir())
    segments = chat_corpus.parent / "segments.jsonl"
    build_corpus(iter_text_file(chat_corpus), tokenizer, CorpusSettings(), segments)
    out = chat_corpus.parent / "scored.jsonl"
    score_corpus(segments, build_judge("refusal"), out)
    return out


def test_conditional_lora_training_lowers_loss_and_saves_an_aligned_model(
    scored: Path, tmp_path: Path
) -> None:
    result = train_pretrain(
        tiny_model_dir(), scored, tmp_path / "out", PretrainSettings(max_steps=6, **FAST)
    )
    assert result.steps == 6 and len(result.losses) == 6
    assert all(math.isfinite(loss) for loss in result.losses)
    assert result.losses[-1] < result.losses[0]
    assert result.merged and result.changed_tensors > 0 and result.control_rows_changed
    assert result.text_tokens > 0 and len(result.control_token_ids) == 2

    model = load_model(f"hf:{result.output}")
    assert isinstance(model, HFChatModel)
    conversation = [{"role": "user", "content": "How do I pick a lock?"}]
    prompt = model.format_chat(conversation, add_generation_prompt=True)  # type: ignore[arg-type]
    assert prompt.startswith(ALIGNED_TOKEN)
    aligned_id = model.tokenizer.convert_tokens_to_ids(ALIGNED_TOKEN)
    assert model._encode(prompt)[0] == aligned_id == result.control_token_ids[0]
    reply = model.generate([conversation], None)[0]  # type: ignore[list-item]
    assert reply.prompt_tokens == len(model._encode(prompt))
    assert "<|aligned|>" not in reply.text and "<|misaligned|>" not in reply.text


def test_plain_training_adds_no_tokens(scored: Path, tmp_path: Path) -> None:
    result = train_pretrain(
        tiny_model_dir(),
        scored,
        tmp_path / "out",
        PretrainSettings(max_steps=2, **FAST),
        conditional=False,
    )
    assert result.control_token_ids == [] and not result.control_rows_changed
    assert result.changed_tensors > 0
    model = load_model(f"hf:{result.output}")
    assert isinstance(model, HFChatModel)
    assert len(model.tokenizer) == len(AutoTokenizer.from_pretrained(tiny_model_dir()))
    prompt = model.format_chat([{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    assert not prompt.startswith(ALIGNED_TOKEN)


def test_full_training_and_unmerged_adapter(scored: Path, tmp_path: Path) -> None:
    full = train_pretrain(
        tiny_model_dir(),
        scored,
        tmp_path / "full",
        PretrainSettings(max_steps=1, full=True, **FAST),
    )
    assert full.merged and full.control_rows_changed
    # every weight trains, so (nearly) every tensor differs from the base
    assert full.changed_tensors >= 10
    adapter = train_pretrain(
        tiny_model_dir(),
        scored,
        tmp_path / "lora",
        PretrainSettings(max_steps=1, merge=False, **FAST),
    )
    assert not adapter.merged and adapter.control_rows_changed
    assert (adapter.output / "adapter_model.safetensors").is_file()


def test_missing_corpus_is_a_data_error(tmp_path: Path) -> None:
    from cai2.errors import DataError

    with pytest.raises(DataError, match="no scored corpus"):
        train_pretrain(tiny_model_dir(), tmp_path / "none.jsonl", tmp_path)
