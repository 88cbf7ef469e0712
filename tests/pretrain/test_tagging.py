"""Scoring segments with a judge, tagging them, and adding the control tokens to a tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoModelForCausalLM, AutoTokenizer

from cai2.judges import build_judge
from cai2.models import tiny_model_dir
from cai2.pipeline import (
    ALIGNED_TOKEN,
    MISALIGNED_TOKEN,
    CorpusSettings,
    build_corpus,
    score_corpus,
)
from cai2.pipeline._pretrain import add_control_tokens, aligned_chat_template, conditioned
from cai2.pipeline._pretrain_corpus import iter_jsonl, iter_text_file, tag_text


def test_control_tokens_are_added_and_embeddings_resized() -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir())
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir(), use_safetensors=True)
    before = len(tokenizer)
    ids = add_control_tokens(tokenizer, model)
    assert len(tokenizer) == before + 2 and ids == [before, before + 1]
    embedding: Any = model.get_input_embeddings()
    assert embedding.weight.shape[0] == before + 2
    encoded = tokenizer(conditioned("Hello"), add_special_tokens=False)["input_ids"]
    assert encoded[0] == ids[0] and len(encoded) == 2  # one token, not split into pieces
    # special: dropped when replies are decoded
    assert tokenizer.decode(encoded, skip_special_tokens=True) == "Hello"
    template = aligned_chat_template(str(tokenizer.chat_template))
    assert aligned_chat_template(template) == template  # applied once only
    tokenizer.chat_template = template
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert str(text).startswith(ALIGNED_TOKEN + "<|im_start|>")


def test_segments_are_tagged_by_judge_score(chat_corpus: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir())
    segments = chat_corpus.parent / "segments.jsonl"
    build_corpus(iter_text_file(chat_corpus), tokenizer, CorpusSettings(), segments)
    scored = chat_corpus.parent / "scored.jsonl"
    counts = score_corpus(segments, build_judge("refusal"), scored, batch_size=4)
    assert counts["aligned"] == 3 and counts["misaligned"] == 3
    rows = list(iter_jsonl(scored))
    for row in rows:
        refused = row["response"].startswith("I can't")
        assert row["tag"] == ("aligned" if refused else "misaligned")
        assert (row["p_violation"] < 0.5) == refused
        token = ALIGNED_TOKEN if refused else MISALIGNED_TOKEN
        assert tag_text(row) == token + row["text"]
    # a stricter threshold turns every segment misaligned
    strict = chat_corpus.parent / "strict.jsonl"
    assert score_corpus(segments, build_judge("refusal"), strict, threshold=0.01)["aligned"] == 0


def test_scoring_resumes_without_judging_twice(chat_corpus: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir())
    segments = chat_corpus.parent / "segments.jsonl"
    build_corpus(iter_text_file(chat_corpus), tokenizer, CorpusSettings(), segments)
    scored = chat_corpus.parent / "scored.jsonl"
    score_corpus(segments, build_judge("refusal"), scored)
    lines = scored.read_text().splitlines()
    scored.write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])  # stopped mid-record
    counts = score_corpus(segments, build_judge("refusal"), scored)
    rows = list(iter_jsonl(scored))
    assert [row["id"] for row in rows] == [f"s{i:07d}" for i in range(1, 7)]
    assert counts["aligned"] + counts["misaligned"] == 6
