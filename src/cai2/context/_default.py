"""The default assessor: MiniLM + heads trained on the built-in set, cached in ``cai2_home()``."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from cai2.context._assessor import ASSESSOR_FORMAT, ContextAssessor, FittedHeads, Progress
from cai2.context._dataset import (
    PromptOrConversation,
    dataset_fingerprint,
    default_dataset_path,
    load_context_dataset,
)
from cai2.context._encoder import MINILM_SAFETENSORS_SHA256, load_sentence_encoder
from cai2.context._finetune import (
    FinetuneSettings,
    fit_finetuned_assessor,
    open_finetuned_encoder,
)
from cai2.context._onnx import DEFAULT_ENCODER, EncoderSpec, load_context_encoder
from cai2.context._rules import RULES
from cai2.context._types import Context
from cai2.home import cai2_home

_lock = threading.Lock()
_default: dict[str, ContextAssessor] = {}


def heads_cache_path(
    dataset_path: str | Path | None = None,
    encoder_sha256: str = MINILM_SAFETENSORS_SHA256,
    spec: EncoderSpec | None = None,
) -> Path:
    """Where heads trained on ``dataset_path`` with the given encoder are cached.

    The key covers the dataset bytes, the encoder weights and variant (layers, int8, fine-tuning
    and its settings), the heads format and the rules, so editing any of them trains afresh
    instead of reusing stale heads. ``spec`` defaults to :data:`DEFAULT_ENCODER`.
    """
    spec = spec or DEFAULT_ENCODER
    rules_digest = hashlib.sha256(
        repr([(r.id, r.tier.value, r.patterns) for r in RULES]).encode()
    ).hexdigest()
    text = (
        f"{dataset_fingerprint(dataset_path)}:{encoder_sha256}:{spec.label}:{ASSESSOR_FORMAT}:"
        f"{rules_digest}"
    )
    if spec.finetuned:
        text += f":{FinetuneSettings().key}"
    key = hashlib.sha256(text.encode()).hexdigest()[:20]
    return cai2_home() / "context" / f"heads-{key}.npz"


def load_default_assessor(
    dataset_path: str | Path | None = None,
    *,
    progress: Progress | None = None,
    spec: EncoderSpec | None = None,
) -> ContextAssessor:
    """The MiniLM assessor trained on the ``train`` split of the labelled set (cached).

    It reads the embeddings of ``spec`` (:data:`DEFAULT_ENCODER` unless given): MiniLM run in ONNX
    Runtime, with the layers, quantisation and fine-tuning that spec names.

    The first call in a fresh ``cai2_home()`` trains the assessor (seconds with a frozen encoder,
    a few minutes when the encoder is fine-tuned, with a message per step) and saves the heads as
    ``.npz`` + ``.json`` next to the fine-tuned encoder's ONNX graph; later calls, and later
    processes, load the saved files.

    Args:
        dataset_path: A labelled JSONL set; the built-in one by default.
        progress: Called with a short message at each training step.
        spec: The encoder variant, :data:`DEFAULT_ENCODER` when omitted; e.g.
            ``EncoderSpec(layers=4, int8=True, finetuned=True)`` for the fine-tuned 4-layer int8
            encoder (``docs/context.md`` compares them).
    """
    file = Path(dataset_path) if dataset_path is not None else default_dataset_path()
    # Memoised by file, home and encoder so repeated `assess()` calls skip hashing the dataset.
    spec = spec or DEFAULT_ENCODER
    memo_key = f"{file.resolve()}|{cai2_home()}|{spec.label}"
    with _lock:
        if memo_key in _default:
            return _default[memo_key]
        cache = heads_cache_path(file, spec=spec)
        meta = {
            "dataset": str(file),
            "dataset_sha256": dataset_fingerprint(file),
            "encoder_sha256": MINILM_SAFETENSORS_SHA256,
        }
        assessor = _load_cached(cache, spec)
        if assessor is None:
            if progress is not None:
                progress(f"training the context assessor on {file.name} (first use; cached after)")
            records = load_context_dataset(file)
            if spec.finetuned:
                assessor = fit_finetuned_assessor(
                    load_sentence_encoder(),
                    spec,
                    records,
                    cache_dir=cache.parent,
                    settings=FinetuneSettings(),
                    progress=progress,
                    meta=meta,
                )
            else:
                encoder = load_context_encoder(spec)
                assessor = ContextAssessor.fit(encoder, records, progress=progress, meta=meta)
            assessor.heads.save(cache)
        _default[memo_key] = assessor
        return assessor


def _load_cached(cache: Path, spec: EncoderSpec) -> ContextAssessor | None:
    """The assessor saved at ``cache``, or ``None`` when it (or its fine-tuned graph) is missing."""
    if not cache.exists():
        return None
    heads = FittedHeads.load(cache)
    if not spec.finetuned:
        return ContextAssessor(load_context_encoder(spec), heads)
    graph = cache.parent / str(heads.meta.get("encoder_file", ""))
    if not graph.is_file():
        return None  # the graph was deleted: train again rather than fail
    return ContextAssessor(open_finetuned_encoder(graph, spec, load_sentence_encoder()), heads)


def assess(
    prompt_or_conversation: PromptOrConversation, *, assessor: ContextAssessor | None = None
) -> Context:
    """Assess one prompt or conversation: risk tier, domains and complexity, with evidence.

    Args:
        prompt_or_conversation: A user prompt, or a list of ``{"role", "content"}`` turns.
        assessor: The assessor to use; the cached default one (:func:`load_default_assessor`)
            when omitted.
    """
    return (assessor or load_default_assessor()).assess(prompt_or_conversation)
