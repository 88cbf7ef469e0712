"""Chat models behind one small protocol, chosen by spec string.

>>> model = load_model("hf:smollm2-135m")          # the embedded model, converted on first use
>>> model.generate([[{"role": "user", "content": "Hi"}]], GenerationParams(max_tokens=20))

Backends: ``hf`` (transformers; batched, trainable, exposes hidden states), ``llamacpp``
(llama-cpp-python in process; fastest for one conversation at a time) and ``openai`` (any
OpenAI-compatible server over HTTP).
"""

from cai2.models._backends import (
    BACKENDS,
    DEFAULT_CHAT_SPEC,
    DEFAULT_GENERATION_SPEC,
    load_model,
    split_spec,
)
from cai2.models._embedded import (
    embedded_gguf_path,
    embedded_model_dir,
    tiny_model_dir,
    verified_gguf_path,
)
from cai2.models._hf import DEFAULT_HF_BATCH_SIZE, HFChatModel, HFOptions
from cai2.models._llamacpp import LlamaCppChatModel, LlamaCppOptions
from cai2.models._openai import OpenAIChatModel, OpenAIOptions
from cai2.models._stopping import ProgressCallback
from cai2.models._types import (
    ChatModel,
    Conversation,
    Generation,
    GenerationParams,
    LocalChatModel,
    Message,
)

DEFAULT_GENERATION_BATCH_SIZE = DEFAULT_HF_BATCH_SIZE
"""Batch size the pipeline's default generation path uses."""

__all__ = [
    "BACKENDS",
    "DEFAULT_CHAT_SPEC",
    "DEFAULT_GENERATION_BATCH_SIZE",
    "DEFAULT_GENERATION_SPEC",
    "ChatModel",
    "Conversation",
    "Generation",
    "GenerationParams",
    "HFChatModel",
    "HFOptions",
    "LlamaCppChatModel",
    "LlamaCppOptions",
    "LocalChatModel",
    "Message",
    "OpenAIChatModel",
    "OpenAIOptions",
    "ProgressCallback",
    "embedded_gguf_path",
    "embedded_model_dir",
    "load_model",
    "split_spec",
    "tiny_model_dir",
    "verified_gguf_path",
]
