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
from cai2.context._encoder import MINILM_SAFETENSORS_SHA256
from cai2.context._onnx import DEFAULT_ENCODER, EncoderSpec, load_context_encoder
from cai2.context._rules import RULES
from cai2.context._types import Context
from cai2.home import cai2_home

_lock = threading.Lock()
_default: dict[str, ContextAssessor] = {}


def heads_cache_path(
    dataset_path: str | Path | None = None,
    encoder_sha256: str = MINILM_SAFETENSORS_SHA256,
    spec: EncoderSpec = DEFAULT_ENCODER,
) -> Path:
    """Where heads trained on ``dataset_path`` with the given encoder are cached.

    The key covers the dataset bytes, the encoder weights and variant (layers, int8), the heads
    format and the rules, so editing any of them trains afresh instead of reusing stale heads.
    """
    rules_digest = hashlib.sha256(
        repr([(r.id, r.tier.value, r.patterns) for r in RULES]).encode()
    ).hexdigest()
    key = hashlib.sha256(
        f"{dataset_fingerprint(dataset_path)}:{encoder_sha256}:{spec.label}:{ASSESSOR_FORMAT}:"
        f"{rules_digest}".encode()
    ).hexdigest()[:20]
    return cai2_home() / "context" / f"heads-{key}.npz"


def load_default_assessor(
    dataset_path: str | Path | None = None, *, progress: Progress | None = None
) -> ContextAssessor:
    """The MiniLM assessor trained on the ``train`` split of the labelled set (cached).

    It reads :data:`DEFAULT_ENCODER` embeddings (the whole MiniLM, run in ONNX Runtime).

    The first call in a fresh ``cai2_home()`` trains the heads (seconds) and saves them as
    ``.npz`` + ``.json``; later calls, and later processes, load the saved heads.

    Args:
        dataset_path: A labelled JSONL set; the built-in one by default.
        progress: Called with a short message at each training step.
    """
    file = Path(dataset_path) if dataset_path is not None else default_dataset_path()
    # Memoised by file and home so repeated `assess()` calls skip hashing the dataset.
    memo_key = f"{file.resolve()}|{cai2_home()}"
    with _lock:
        if memo_key in _default:
            return _default[memo_key]
        cache = heads_cache_path(file)
        encoder = load_context_encoder(DEFAULT_ENCODER)
        if cache.exists():
            assessor = ContextAssessor(encoder, FittedHeads.load(cache))
        else:
            if progress is not None:
                progress(f"training the context assessor on {file.name} (first use; cached after)")
            assessor = ContextAssessor.fit(
                encoder,
                load_context_dataset(file),
                progress=progress,
                meta={
                    "dataset": str(file),
                    "dataset_sha256": dataset_fingerprint(file),
                    "encoder_sha256": MINILM_SAFETENSORS_SHA256,
                },
            )
            assessor.heads.save(cache)
        _default[memo_key] = assessor
        return assessor


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
