"""The corpus of stage 1: documents from files, ``datasets`` datasets and model answers, cut into
token segments, de-duplicated, bucketed by length and scored against the constitution.

Everything streams: documents are read one at a time, segments are appended to a JSONL file as they
are made, and scoring reads that file in batches, so the corpus never has to fit in memory (only an
8-byte hash per kept segment does, for de-duplication).

A segment record holds ``id``, ``source`` (where it came from, with file and line), ``text`` (what
the model trains on), ``tokens``, ``bucket`` (the length bucket) and, for a conversation, ``prompt``
and ``response``. Scoring adds ``p_violation`` and ``tag`` (``aligned`` or ``misaligned``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from cai2.config import StrictModel
from cai2.errors import DataError
from cai2.models import ChatModel, GenerationParams
from cai2.store import JsonlWriter
from cai2.store._files import json_object

ALIGNED_TOKEN = "<|aligned|>"
"""Control token of segments the judges found in line with the constitution (Korbak et al. 2023)."""
MISALIGNED_TOKEN = "<|misaligned|>"
"""Control token of segments the judges found violating it (or could not judge)."""
CONTROL_TOKENS = (ALIGNED_TOKEN, MISALIGNED_TOKEN)

UNPROMPTED_REQUEST = "Write a passage of text."
"""The request a judge sees for a plain-text segment, which answers no user turn."""


class CorpusSettings(StrictModel):
    """Where the pre-training corpus comes from and how it is cut."""

    files: list[str] = Field(
        default_factory=list,
        description=(
            "Text files: `.txt` (documents separated by blank lines) or `.jsonl` (one object per "
            "line with `text`, or `prompt` + `response` for a conversation)."
        ),
    )
    datasets: list[str] = Field(
        default_factory=list,
        description=(
            "Local `datasets` datasets: a folder written by `save_to_disk`, or a data file or "
            "folder that `datasets.load_dataset` reads (json, csv, parquet, text)."
        ),
    )
    dataset_split: str = Field("train", description="Split of each dataset to read.")
    text_field: str = Field("text", description="Column or JSON key holding a document's text.")
    generated: list[str] = Field(
        default_factory=list,
        description=(
            "Training prompt sets (built-in names such as `redteam`, `helpful`, or `.jsonl` paths) "
            "answered by the stage's model; evaluation prompts are refused."
        ),
    )
    generated_limit_per_set: int | None = Field(
        None, ge=1, description="Answer only the first this-many prompts of each set."
    )
    generation: GenerationParams = Field(
        default_factory=lambda: GenerationParams(
            max_tokens=96, temperature=1.0, top_p=0.95, seed=0
        ),
        description="Sampling of the generated answers.",
    )
    segment_tokens: int = Field(128, ge=8, description="Most tokens of a plain-text segment.")
    min_segment_tokens: int = Field(
        8, ge=1, description="Shorter segments are merged into the one before, or dropped."
    )
    buckets: list[int] = Field(
        default_factory=lambda: [32, 64, 128, 256],
        description="Upper edges of the length buckets (tokens); longer segments get `>last`.",
    )
    deduplicate: bool = Field(True, description="Drop segments whose normalised text was seen.")
    max_segments: int | None = Field(None, ge=1, description="Stop after this many segments.")


@dataclass
class Document:
    """One input document before segmenting."""

    source: str
    text: str
    prompt: str | None = None
    """Set for a conversation: the user turn that ``text`` answers."""


@dataclass
class CorpusStats:
    """Counts of one corpus build."""

    documents: int = 0
    segments: int = 0
    duplicates: int = 0
    too_short: int = 0
    excluded: int = 0
    tokens: int = 0
    buckets: dict[str, int] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, Any]:
        """A flat JSON-ready dict."""
        out: dict[str, Any] = {
            "documents": self.documents,
            "segments": self.segments,
            "duplicates": self.duplicates,
            "too_short": self.too_short,
            "excluded": self.excluded,
            "tokens": self.tokens,
        }
        out.update({f"bucket_{name}": count for name, count in sorted(self.buckets.items())})
        return out


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file read line by line; a torn last line (a stopped writer) is skipped."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                return  # torn tail: the writer stopped mid-record
            if line.strip():
                yield json.loads(line)


def normalised_hash(text: str) -> bytes:
    """8 bytes identifying ``text`` up to case, punctuation and whitespace."""
    folded = re.sub(r"[\W_]+", " ", text.lower()).strip()
    return hashlib.blake2b(folded.encode("utf-8"), digest_size=8).digest()


def bucket_name(tokens: int, edges: Sequence[int]) -> str:
    """The length bucket of a segment of ``tokens`` tokens: the smallest edge that holds it."""
    for edge in sorted(edges):
        if tokens <= edge:
            return f"le{edge}"
    return f"gt{max(edges)}" if edges else "all"


# -- reading documents ---------------------------------------------------------------------------


def iter_text_file(path: Path, text_field: str = "text") -> Iterator[Document]:
    """Documents of a ``.txt`` or ``.jsonl`` file, one at a time.

    Raises:
        DataError: naming file and line for a missing file, bad JSON, a wrong field or bad UTF-8.
    """
    if not path.is_file():
        raise DataError(f"{path}: corpus file not found")
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".jsonl"):
        raise DataError(f"{path}: corpus files must be `.txt` or `.jsonl`, not `{suffix}`")
    with path.open("rb") as handle:
        block: list[str] = []
        start = 1
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid UTF-8 ({exc.reason})") from exc
            if suffix == ".jsonl":
                if line.strip():
                    yield _jsonl_document(line, f"{path}:{number}", text_field)
                continue
            if line.strip():
                if not block:
                    start = number
                block.append(line.rstrip("\n"))
            elif block:
                yield Document(f"{path}:{start}", "\n".join(block))
                block = []
        if block:
            yield Document(f"{path}:{start}", "\n".join(block))


def _jsonl_document(line: str, where: str, text_field: str) -> Document:
    return _row_document(json_object(line, where), where, text_field)


def _row_document(row: dict[str, Any], where: str, text_field: str) -> Document:
    if isinstance(row.get("prompt"), str) and isinstance(row.get("response"), str):
        return Document(where, row["response"], prompt=row["prompt"])
    text = row.get(text_field)
    if not isinstance(text, str):
        raise DataError(
            f"{where}: needs a string `{text_field}` (or `prompt` and `response`); "
            f"keys: {', '.join(sorted(row)) or 'none'}"
        )
    return Document(where, text)


def iter_dataset(target: str, split: str, text_field: str) -> Iterator[Document]:
    """Documents of a local ``datasets`` dataset (``save_to_disk`` folder or data files).

    Raises:
        DataError: when the dataset cannot be read or lacks ``text_field``.
    """
    import datasets

    path = Path(target).expanduser()
    if not path.exists():
        raise DataError(f"dataset {path} not found (only local datasets can be read offline)")
    try:
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            loaded: Any = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                loaded = loaded[split]
        else:
            loaded = datasets.load_dataset(str(path), split=split, streaming=True)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        raise DataError(f"dataset {path}: cannot read split `{split}` ({exc})") from exc
    for index, row in enumerate(loaded):
        yield _row_document(dict(row), f"{path}[{split}][{index}]", text_field)


def iter_generated(
    model: ChatModel,
    sets: Sequence[str],
    limit_per_set: int | None,
    params: GenerationParams,
    answers_path: Path,
    *,
    excluded: set[bytes],
    batch_size: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Document]:
    """The model's answers to the training prompt sets, saved to ``answers_path`` as they come.

    Answers already in ``answers_path`` (a stopped run) are reused; prompts whose normalised hash
    is in ``excluded`` (evaluation prompts) are skipped.
    """
    from cai2.critique import training_items
    from cai2.models import Message

    items = []
    for item in training_items(sets, limit_per_set):
        if normalised_hash(item.prompt) in excluded:
            # Not answered; passed on empty so that the corpus counts it as excluded.
            yield Document(f"generated:{item.id}", "", prompt=item.prompt)
        else:
            items.append(item)
    with JsonlWriter(answers_path, id_key="id") as out:
        todo = [item for item in items if item.id not in out.done_ids]
        done = len(items) - len(todo)
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            replies = model.generate(
                [[Message(role="user", content=item.prompt)] for item in batch], params
            )
            for item, reply in zip(batch, replies, strict=True):
                out.append({"id": item.id, "prompt": item.prompt, "response": reply.text})
            done += len(batch)
            if progress is not None:
                progress(done, len(items))
    for row in iter_jsonl(answers_path):
        yield Document(f"generated:{row['id']}", str(row["response"]), prompt=str(row["prompt"]))


def evaluation_prompt_hashes() -> set[bytes]:
    """Normalised hashes of the evaluation prompts kept out of the corpus.

    These are the benign evaluation items and every AdvBench behaviour (its held-out part is the
    red-team evaluation set; the rest is excluded too, as the `sl` stage does).
    """
    from cai2.evals import load_benign_items

    prompts = [item.prompt for item in load_benign_items()]
    try:
        from cai2.benchmarks import load_advbench

        prompts += list(load_advbench())
    except DataError:
        pass  # pyrit not installed: there is no AdvBench to leak
    return {normalised_hash(p) for p in prompts}


# -- segmenting ----------------------------------------------------------------------------------


class Segmenter:
    """Cuts documents into token segments and renders conversations with the chat template."""

    def __init__(self, tokenizer: Any, settings: CorpusSettings) -> None:
        self.tokenizer = tokenizer
        self.settings = settings

    def count(self, text: str) -> int:
        """Tokens of ``text`` (no special tokens added)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def segments(self, document: Document) -> Iterator[dict[str, Any]]:
        """Segments of ``document``: token chunks of plain text, one rendered conversation."""
        if document.prompt is not None:
            text = self.tokenizer.apply_chat_template(
                [
                    {"role": "user", "content": document.prompt},
                    {"role": "assistant", "content": document.text},
                ],
                tokenize=False,
            )
            yield {
                "text": str(text),
                "prompt": document.prompt,
                "response": document.text,
                "tokens": self.count(str(text)),
            }
            return
        ids = self.tokenizer(document.text, add_special_tokens=False)["input_ids"]
        size, smallest = self.settings.segment_tokens, self.settings.min_segment_tokens
        chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
        if len(chunks) > 1 and len(chunks[-1]) < smallest:
            tail = chunks.pop()
            chunks[-1] = chunks[-1] + tail  # a short tail joins the segment before
        for chunk in chunks:
            yield {"text": self.tokenizer.decode(chunk).strip(), "tokens": len(chunk)}


def build_corpus(
    documents: Iterable[Document],
    tokenizer: Any,
    settings: CorpusSettings,
    out_path: Path,
    *,
    excluded: set[bytes] | None = None,
) -> CorpusStats:
    """Segment, de-duplicate and bucket ``documents`` into the JSONL file ``out_path``.

    The file is written from scratch, one record per segment as it is made.
    """
    segmenter = Segmenter(tokenizer, settings)
    stats = CorpusStats()
    seen: set[bytes] = set()
    excluded = excluded or set()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_suffix(".partial")
    with JsonlWriter(partial, fsync=False) as out:
        for document in documents:
            stats.documents += 1
            if document.prompt is not None and normalised_hash(document.prompt) in excluded:
                stats.excluded += 1
                continue
            for index, segment in enumerate(segmenter.segments(document)):
                if segment["tokens"] < settings.min_segment_tokens or not segment["text"]:
                    stats.too_short += 1
                    continue
                key = normalised_hash(segment["text"])
                if key in excluded:
                    stats.excluded += 1
                    continue
                if settings.deduplicate:
                    if key in seen:
                        stats.duplicates += 1
                        continue
                    seen.add(key)
                bucket = bucket_name(segment["tokens"], settings.buckets)
                stats.buckets[bucket] = stats.buckets.get(bucket, 0) + 1
                stats.segments += 1
                stats.tokens += segment["tokens"]
                out.append(
                    {
                        "id": f"s{stats.segments:07d}",
                        "source": document.source if index == 0 else f"{document.source}#{index}",
                        "bucket": bucket,
                        **segment,
                    }
                )
                if settings.max_segments is not None and stats.segments >= settings.max_segments:
                    break
            if settings.max_segments is not None and stats.segments >= settings.max_segments:
                break
    if stats.segments == 0:
        partial.unlink(missing_ok=True)
        raise DataError(
            "the corpus is empty: no segment survived (add `files`, `datasets` or `generated`, or "
            "lower `min_segment_tokens`)"
        )
    partial.replace(out_path)
    return stats


# -- scoring and tagging -------------------------------------------------------------------------


Unjudged = Literal["misaligned", "aligned", "drop"]


def score_corpus(
    segments_path: Path,
    judge: Any,
    out_path: Path,
    *,
    threshold: float = 0.5,
    unjudged: Unjudged = "misaligned",
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Judge every segment and write it to ``out_path`` with ``p_violation`` and its ``tag``.

    A segment is ``misaligned`` when the judge's P(violation) is at least ``threshold``. One the
    judge could not judge gets ``unjudged`` (by default misaligned, so the aligned token is learned
    only from segments a judge vouched for). Resumable: segments already in ``out_path`` are kept.

    Returns:
        Counts of ``aligned``, ``misaligned``, ``unjudged`` and ``dropped`` segments.
    """
    from cai2.judges import JudgeItem

    total = sum(1 for _ in iter_jsonl(segments_path))
    counts = {"aligned": 0, "misaligned": 0, "unjudged": 0, "dropped": 0}
    with JsonlWriter(out_path, id_key="id") as out:
        for row in iter_jsonl(out_path):
            counts[str(row["tag"])] += 1
        done = len(out.done_ids)
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal done
            verdicts = judge.verdict_batch(
                [
                    JudgeItem.of(
                        row.get("prompt") or UNPROMPTED_REQUEST, row.get("response", row["text"])
                    )
                    for row in batch
                ]
            )
            for row, verdict in zip(batch, verdicts, strict=True):
                p = verdict.p_violation
                if p is None:
                    counts["unjudged"] += 1
                    if unjudged == "drop":
                        counts["dropped"] += 1
                        continue
                    tag = unjudged
                else:
                    tag = "misaligned" if p >= threshold else "aligned"
                counts[tag] += 1
                out.append({**row, "p_violation": p, "tag": tag})
            done += len(batch)
            batch.clear()
            if progress is not None:
                progress(done, total)

        for row in iter_jsonl(segments_path):
            if row["id"] in out.done_ids:
                continue
            batch.append(row)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    return counts


def tag_text(row: dict[str, Any]) -> str:
    """A scored segment's text behind its control token (conditional training)."""
    token = ALIGNED_TOKEN if row["tag"] == "aligned" else MISALIGNED_TOKEN
    return token + str(row["text"])
