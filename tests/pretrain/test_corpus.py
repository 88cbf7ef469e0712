"""The corpus builder: segmenting, de-duplication, buckets, streaming sources, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from cai2.errors import DataError
from cai2.models import tiny_model_dir
from cai2.pipeline import CorpusSettings, build_corpus
from cai2.pipeline._pretrain_corpus import (
    Document,
    bucket_name,
    iter_dataset,
    iter_jsonl,
    iter_text_file,
    normalised_hash,
)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_dir())


def test_long_documents_are_cut_into_token_segments(tmp_path: Path, tokenizer: Any) -> None:
    text = " ".join(f"word{i}" for i in range(300))
    settings = CorpusSettings(segment_tokens=32, min_segment_tokens=8, buckets=[16, 32, 64])
    stats = build_corpus([Document("doc", text)], tokenizer, settings, tmp_path / "s.jsonl")
    rows = list(iter_jsonl(tmp_path / "s.jsonl"))
    total = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert stats.segments == len(rows) > 1
    assert sum(row["tokens"] for row in rows) == total == stats.tokens
    # every segment but the last has exactly 32 tokens; a short tail was merged, not dropped
    assert all(row["tokens"] == 32 for row in rows[:-1])
    assert 8 <= rows[-1]["tokens"] < 32 + 8
    assert rows[0]["source"] == "doc" and rows[1]["source"] == "doc#1"
    assert {row["bucket"] for row in rows[:-1]} == {"le32"}
    assert stats.buckets["le32"] >= len(rows) - 1


def test_near_duplicates_are_dropped_by_normalised_hash(tmp_path: Path, tokenizer: Any) -> None:
    docs = [
        Document("a", "The cat sat on the mat, quietly."),
        Document("b", "the CAT sat   on the mat quietly"),
        Document("c", "A different sentence about dogs and parks."),
    ]
    stats = build_corpus(
        docs, tokenizer, CorpusSettings(min_segment_tokens=2), tmp_path / "s.jsonl"
    )
    assert stats.documents == 3 and stats.segments == 2 and stats.duplicates == 1
    kept = [row["source"] for row in iter_jsonl(tmp_path / "s.jsonl")]
    assert kept == ["a", "c"]
    assert normalised_hash("Hi, there!") == normalised_hash("hi there")
    off = CorpusSettings(min_segment_tokens=2, deduplicate=False)
    assert build_corpus(docs, tokenizer, off, tmp_path / "t.jsonl").segments == 3


def test_bucket_names() -> None:
    assert bucket_name(10, [32, 64]) == "le32"
    assert bucket_name(64, [32, 64]) == "le64"
    assert bucket_name(65, [32, 64]) == "gt64"


def test_excluded_prompts_and_empty_corpus(tmp_path: Path, tokenizer: Any) -> None:
    docs = [Document("x", "An answer that is long enough to keep.", prompt="Secret eval prompt?")]
    excluded = {normalised_hash("secret EVAL prompt")}
    with pytest.raises(DataError, match="corpus is empty"):
        build_corpus(docs, tokenizer, CorpusSettings(), tmp_path / "s.jsonl", excluded=excluded)
    assert not (tmp_path / "s.jsonl").exists()


def test_segments_are_written_while_documents_are_still_read(
    tmp_path: Path, tokenizer: Any
) -> None:
    out = tmp_path / "s.jsonl"
    seen_on_disk: list[int] = []

    def documents() -> Iterator[Document]:
        for i in range(5):
            partial = out.with_suffix(".partial")
            seen_on_disk.append(len(partial.read_text().splitlines()) if partial.exists() else 0)
            yield Document(f"d{i}", f"Document number {i} says something new each time: {i * 7}.")

    stats = build_corpus(documents(), tokenizer, CorpusSettings(min_segment_tokens=2), out)
    assert stats.segments == 5
    assert seen_on_disk == [0, 1, 2, 3, 4]  # one record on disk per document already consumed


def test_txt_and_jsonl_files_stream_documents(tmp_path: Path, chat_corpus: Path) -> None:
    txt = tmp_path / "notes.txt"
    txt.write_text("First paragraph\ncontinues here.\n\n\nSecond paragraph.\n", encoding="utf-8")
    docs = list(iter_text_file(txt))
    assert [d.text for d in docs] == ["First paragraph\ncontinues here.", "Second paragraph."]
    assert [d.source for d in docs] == [f"{txt}:1", f"{txt}:5"]
    chats = list(iter_text_file(chat_corpus))
    assert len(chats) == 6 and chats[0].prompt == "How do I pick lock 0?"
    assert chats[1].source == f"{chat_corpus}:2"


def test_conversations_become_chat_rendered_segments(chat_corpus: Path, tokenizer: Any) -> None:
    out = chat_corpus.parent / "s.jsonl"
    build_corpus(iter_text_file(chat_corpus), tokenizer, CorpusSettings(), out)
    rows = list(iter_jsonl(out))
    assert len(rows) == 6
    assert rows[0]["prompt"] == "How do I pick lock 0?"
    assert "<|im_start|>user\nHow do I pick lock 0?" in rows[0]["text"]
    assert rows[0]["text"].rstrip().endswith("<|im_end|>")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "ok"}\n{"text": \n', r"bad\.jsonl:2: not valid JSON"),
        ('{"text": "ok"}\n{"body": "x"}\n', r"bad\.jsonl:2: needs a string `text`.*keys: body"),
        ('["a list"]\n', r"bad\.jsonl:1: expected a JSON object"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        list(iter_text_file(path))


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        list(iter_text_file(tmp_path / "missing.txt"))
    (tmp_path / "c.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"`\.txt` or `\.jsonl`"):
        list(iter_text_file(tmp_path / "c.csv"))
    (tmp_path / "latin.txt").write_bytes(b"fine line\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"latin\.txt:2: not valid UTF-8"):
        list(iter_text_file(tmp_path / "latin.txt"))


def test_datasets_from_disk_and_from_data_files(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    rows = [{"text": f"row {i}", "n": i} for i in range(4)]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "flat"))
    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "dict"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "part.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for target in ("flat", "dict", "data"):
        docs = list(iter_dataset(str(tmp_path / target), "train", "text"))
        assert [d.text for d in docs] == ["row 0", "row 1", "row 2", "row 3"], target
    with pytest.raises(DataError, match=r"\[train\]\[0\]: needs a string `body`"):
        list(iter_dataset(str(tmp_path / "flat"), "train", "body"))
    with pytest.raises(DataError, match="not found"):
        list(iter_dataset(str(tmp_path / "nowhere"), "train", "text"))
