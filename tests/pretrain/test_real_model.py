"""Stage 1 on the real embedded model (slow): a short conditional run that loads and generates."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from cai2.judges import build_judge
from cai2.models import load_model
from cai2.pipeline import (
    CorpusSettings,
    PretrainSettings,
    build_corpus,
    score_corpus,
    train_pretrain,
)
from cai2.pipeline._pretrain_corpus import iter_text_file
from cai2.pipeline._sl import hf_model_directory


@pytest.mark.slow
def test_conditional_pretraining_on_smollm2(chat_corpus: Path, tmp_path: Path) -> None:
    directory = hf_model_directory("hf:smollm2-135m")
    segments, scored = tmp_path / "segments.jsonl", tmp_path / "scored.jsonl"
    build_corpus(
        iter_text_file(chat_corpus),
        AutoTokenizer.from_pretrained(directory),
        CorpusSettings(),
        segments,
    )
    score_corpus(segments, build_judge("refusal"), scored)
    settings = PretrainSettings(max_steps=2, batch_size=3, max_length=64, learning_rate=1e-3)
    result = train_pretrain(directory, scored, tmp_path / "out", settings)
    assert result.steps == 2 and all(math.isfinite(loss) for loss in result.losses)
    assert result.control_rows_changed
    model = load_model(f"hf:{result.output}")
    reply = model.generate([[{"role": "user", "content": "Say hello."}]], None)[0]
    assert reply.text.strip() and "<|aligned|>" not in reply.text
