"""Choosing a backend by spec string, e.g. ``hf:smollm2-135m`` or ``openai:URL#model``.

The part before the first colon names a backend in :data:`BACKENDS`; the rest is handed to that
backend's factory together with keyword options. Third-party backends register through the
entry-point group ``cai2.backends``.
"""

from __future__ import annotations

from typing import Any

from cai2.errors import ConfigError
from cai2.models._types import ChatModel
from cai2.registry import Registry

BACKENDS: Registry[ChatModel] = Registry("backends")
BACKENDS.register("hf", "cai2.models._hf:load_hf_model")
BACKENDS.register("llamacpp", "cai2.models._llamacpp:load_llamacpp_model")
BACKENDS.register("openai", "cai2.models._openai:load_openai_model")

DEFAULT_GENERATION_SPEC = "hf:smollm2-135m"
"""The model the pipeline generates with unless a recipe names another (see bench/generation.py)."""

DEFAULT_CHAT_SPEC = "llamacpp:smollm2-135m"
"""The model `cai2 chat` uses: one conversation at a time, where llama.cpp is the fastest path."""


def split_spec(spec: str) -> tuple[str, str]:
    """Split ``backend:target`` into its two parts.

    Raises:
        ConfigError: if the spec has no backend prefix, with the known backends.
    """
    backend, separator, target = spec.partition(":")
    if not separator or not backend or not target:
        raise ConfigError(
            f"model spec `{spec}` must look like `backend:target`, e.g. `hf:smollm2-135m`, "
            f"`llamacpp:/path/model.gguf` or `openai:http://127.0.0.1:8080/v1#model-name`; "
            f"known backends: {', '.join(BACKENDS.names())}"
        )
    return backend, target


def load_model(spec: str, **options: Any) -> ChatModel:
    """Build the model a spec string names.

    Args:
        spec: ``backend:target``. Built in: ``hf:smollm2-135m`` (the embedded model, converted on
            first use), ``hf:tiny`` (tiny random weights, for tests), ``hf:/path/to/dir``;
            ``llamacpp:smollm2-135m`` or ``llamacpp:/path/model.gguf``;
            ``openai:http://host:port/v1#model-name`` (any OpenAI-compatible server).
        **options: Backend options, e.g. ``batch_size`` for ``hf``, ``n_ctx`` for ``llamacpp``,
            ``api_key``/``max_concurrency``/``timeout`` for ``openai``, and ``progress`` (a callable
            taking ``(done, total)``) for all three.

    Raises:
        ConfigError: for an unknown backend or a malformed spec or option.
        ModelError: if the model cannot be loaded.
    """
    backend, target = split_spec(spec)
    factory = BACKENDS.get(backend)
    return factory(target, **options)
