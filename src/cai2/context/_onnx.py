"""MiniLM through ONNX Runtime: the context assessor's encoder in a third of PyTorch's time.

A ``SentenceTransformer`` forward pass on one short prompt costs ~25 ms on one core of the
reference machine; ONNX Runtime runs the same exported graph, with the same output, in ~10 ms. Two
further choices make it cheaper still:

* **fewer layers** — the encoder keeps only the first ``layers`` transformer blocks and mean-pools
  their output;
* **int8 weights** — ONNX Runtime's dynamic quantisation of the matrix multiplications.

Both change the embeddings, so heads must be trained for them; ``bench/context.py`` compares every
variant out-of-fold on the training split (``docs/context.md`` has the table).

The graph is exported once from the verified packaged weights with ``torch.onnx`` and cached in
``cai2_home()/context`` under a key that covers the weights, the layer count, the quantisation and
the library versions. Heads must be trained on the same :class:`EncoderSpec` they are used with; the
assessor records it in its metadata.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from cai2.context._encoder import (
    MINILM_SAFETENSORS_SHA256,
    _mean_pooling_parts,
    fast_backend,
    load_sentence_encoder,
)
from cai2.errors import ConfigError, ModelError

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class EncoderSpec:
    """Which MiniLM variant an assessor reads.

    Attributes:
        layers: Transformer blocks kept (1–6; 6 is the whole model).
        int8: Dynamically quantised int8 weights (ONNX Runtime) instead of float32.
        runtime: ``"onnx"`` (ONNX Runtime) or ``"torch"`` (the ``SentenceTransformer`` itself; only
            with all 6 layers and float32, the encoder of heads trained before this option existed).
        finetuned: The transformer blocks were fine-tuned on the labelled training prompts
            (:mod:`cai2.context._finetune`) before export; only with the onnx runtime.
    """

    layers: int = 6
    int8: bool = False
    runtime: str = "onnx"
    finetuned: bool = False

    def __post_init__(self) -> None:
        if self.runtime not in ("onnx", "torch"):
            raise ConfigError(f"encoder runtime must be 'onnx' or 'torch', got {self.runtime!r}")
        if not 1 <= self.layers <= 6:
            raise ConfigError(f"encoder layers must be between 1 and 6, got {self.layers}")
        if self.runtime == "torch" and self.finetuned:
            raise ConfigError("a fine-tuned encoder runs in ONNX Runtime; use runtime 'onnx'")
        if self.runtime == "torch" and (self.layers != 6 or self.int8):
            raise ConfigError(
                "the torch runtime runs the whole float32 model; use runtime 'onnx' for "
                f"{self.layers} layers{' in int8' if self.int8 else ''}"
            )

    @property
    def label(self) -> str:
        """Short name, e.g. ``onnx-l4-int8`` (``-ft`` appended when fine-tuned)."""
        if self.runtime == "torch":
            return "torch-l6-fp32"
        suffix = "-ft" if self.finetuned else ""
        return f"onnx-l{self.layers}-{'int8' if self.int8 else 'fp32'}{suffix}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the heads' metadata)."""
        return {
            "layers": self.layers,
            "int8": self.int8,
            "runtime": self.runtime,
            "finetuned": self.finetuned,
        }

    @classmethod
    def from_label(cls, label: str) -> EncoderSpec:
        """Inverse of :attr:`label`, e.g. ``onnx-l4-int8-ft`` or ``torch-l6-fp32``."""
        if label == "torch-l6-fp32":
            return cls(runtime="torch")
        match = re.fullmatch(r"onnx-l(\d+)-(fp32|int8)(-ft)?", label)
        if match is None:
            raise ConfigError(
                f"unknown encoder {label!r}: expected onnx-l<layers>-<fp32|int8>[-ft] "
                "(e.g. onnx-l6-fp32, onnx-l4-int8-ft) or torch-l6-fp32"
            )
        return cls(
            layers=int(match.group(1)),
            int8=match.group(2) == "int8",
            finetuned=match.group(3) is not None,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> EncoderSpec:
        """Inverse of :meth:`as_dict`; ``None`` (heads saved before specs existed) is torch."""
        if data is None:
            return cls(runtime="torch")
        return cls(
            layers=int(data["layers"]),
            int8=bool(data["int8"]),
            runtime=str(data["runtime"]),
            finetuned=bool(data.get("finetuned", False)),
        )


DEFAULT_ENCODER = EncoderSpec(layers=4, int8=False, finetuned=True)
"""The default assessor's encoder: MiniLM's first 4 blocks in float32, fine-tuned on the labelled
training prompts (:mod:`cai2.context._finetune`), in ONNX Runtime. Chosen by cross-round validation
(``bench/context_rounds.py``: trained on the first two labelling rounds, scored on the third, the
best macro-F1 among encoders with recall of high+critical ≥ 0.95 and encoder p50 ≤ 3.5 ms), which
replaced out-of-fold selection after out-of-fold scores overstated a fresh round by 0.1. The first
use fine-tunes it (a few minutes), later uses load the cached graph."""

FROZEN_ENCODER = EncoderSpec(layers=6, int8=False)
"""The whole float32 MiniLM in ONNX Runtime, not fine-tuned: embeddings equal to the
``SentenceTransformer``'s (to ~1e-7). The default before 2026-11-29, and what
:func:`load_context_encoder` loads when given no spec."""


def encoder_spec(encoder: Any) -> EncoderSpec | None:
    """The spec of ``encoder``: its own for an :class:`OnnxEncoder`, the torch spec for a plain
    mean-pooling ``SentenceTransformer``, ``None`` for anything else (not checked)."""
    spec = getattr(encoder, "spec", None)
    if isinstance(spec, EncoderSpec):
        return spec
    return EncoderSpec(runtime="torch") if _mean_pooling_parts(encoder) is not None else None


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ModelError(
            "the ONNX encoder needs onnxruntime; install it with "
            "`pip install 'onnxruntime==1.32.0'`"
        ) from exc
    return onnxruntime


def _last_hidden(model: Any) -> Any:
    """``model`` wrapped so ``torch.onnx.export`` sees positional inputs and one output."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    return LastHidden()


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


def onnx_cache_key(weights_sha256: str, spec: EncoderSpec) -> str:
    """Cache key of an exported graph: weights, spec and the exporting/running library versions."""
    versions = ":".join(
        f"{name}={metadata.version(name)}" for name in ("torch", "onnxruntime", "transformers")
    )
    return hashlib.sha256(f"{weights_sha256}:{spec.label}:{versions}".encode()).hexdigest()[:16]


def export_onnx(transformer: Any, tokenizer: Any, spec: EncoderSpec, path: Path) -> Path:
    """Export the first ``spec.layers`` blocks of a BERT ``transformer`` to ``path`` (atomically).

    With ``spec.int8`` the float32 graph is written to a temporary file and quantised into
    ``path``. The model passed in is not modified.
    """
    import torch

    available = len(transformer.encoder.layer)
    if spec.layers > available:
        raise ConfigError(f"{spec.label} asks for {spec.layers} layers; the model has {available}")
    model = copy.deepcopy(transformer).eval()
    model.encoder.layer = model.encoder.layer[: spec.layers]
    model.config.num_hidden_layers = spec.layers
    sample = tokenizer(["a short sample sentence"], return_tensors="pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        fp32 = Path(scratch) / "fp32.onnx"
        axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUT_NAMES, "last_hidden_state")}
        with torch.inference_mode(), warnings.catch_warnings():
            # The tracer warns about Python-level branches on shapes; the exported graph is
            # checked against the PyTorch model for padded batches in the tests.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _last_hidden(model),
                tuple(sample[name] for name in INPUT_NAMES),
                str(fp32),
                input_names=list(INPUT_NAMES),
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        result = fp32
        if spec.int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            result = Path(scratch) / "int8.onnx"
            # DefaultTensorType: shape inference leaves some MatMul outputs untyped; they are float.
            # The quantiser's advice to run its optional pre-processing (shape inference and
            # graph clean-up) goes to the root logger on every call; the quantised graph is
            # checked against float32 in the tests instead, so the advice is filtered out here.
            root = logging.getLogger()
            advice = _DropMessage("Please consider to run pre-processing")
            root.addFilter(advice)
            try:
                quantize_dynamic(
                    str(fp32),
                    str(result),
                    weight_type=QuantType.QInt8,
                    extra_options={"DefaultTensorType": 1},
                )
            finally:
                root.removeFilter(advice)
        os.replace(result, path)
    return path


class OnnxEncoder:
    """A mean-pooling sentence encoder running an exported MiniLM graph in ONNX Runtime.

    It has the ``encode`` signature cai2 uses from ``SentenceTransformer`` and exposes the
    tokenizer and input-embedding table for the cascade's static fast path.

    Args:
        path: The ``.onnx`` file (from :func:`export_onnx`).
        tokenizer: The model's tokenizer.
        token_table: The input token-embedding table (float32, ``vocab × dim``).
        spec: The spec the graph was exported with.
        max_length: Truncation length in tokens.
        threads: ONNX Runtime intra-op threads (1 keeps batch-1 latency steady beside other work).
    """

    def __init__(
        self,
        path: Path,
        tokenizer: Any,
        token_table: np.ndarray,
        spec: EncoderSpec,
        *,
        max_length: int = 256,
        threads: int = 1,
    ) -> None:
        ort = _ort()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelError(
                f"could not load the ONNX encoder {path}: {exc}; delete the file to export it again"
            ) from exc
        self.path = path
        self.tokenizer = tokenizer
        self.token_table = token_table
        self.spec = spec
        self.max_seq_length = max_length
        self._backend = fast_backend(tokenizer, max_length, pad=True)

    def _feeds(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        if self._backend is not None:
            encodings = self._backend.encode_batch(list(texts))
            return {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_seq_length,
            return_tensors="np",
        )
        return {name: np.asarray(batch[name], dtype=np.int64) for name in INPUT_NAMES}

    def _batch(self, texts: Sequence[str]) -> np.ndarray:
        feeds = self._feeds(texts)
        hidden = self.session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
        return np.asarray(pooled, dtype=np.float32)

    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
        **_ignored: Any,
    ) -> np.ndarray:
        """Mean-pooled embeddings: shape ``(n, dim)`` for a list of texts and ``(dim,)`` for a
        single string, as ``SentenceTransformer.encode`` returns them."""
        single = isinstance(sentences, str)
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        if not texts:
            return np.zeros((0, self.token_table.shape[1]), dtype=np.float32)
        # Sorting by length keeps padding small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.token_table.shape[1]), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = self._batch([texts[i] for i in rows])
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out[0] if single else out


def load_onnx_encoder(
    spec: EncoderSpec,
    *,
    encoder: Any | None = None,
    cache_dir: Path | None = None,
    weights_id: str | None = None,
) -> OnnxEncoder:
    """The packaged MiniLM as an :class:`OnnxEncoder` for ``spec`` (exported on first use).

    Args:
        spec: Layers and quantisation; ``spec.runtime`` must be ``"onnx"``.
        encoder: A loaded ``SentenceTransformer`` of the packaged model (loaded if omitted).
        cache_dir: Where exported graphs live; ``cai2_home()/context`` by default.
        weights_id: Identifies ``encoder``'s weights in the cache key (the packaged MiniLM's
            sha256 by default; pass your own when ``encoder`` is another model).
    """
    from cai2.home import cai2_home

    if spec.runtime != "onnx":
        raise ConfigError(f"load_onnx_encoder needs an onnx spec, got {spec.label}")
    if spec.finetuned and (encoder is None or weights_id is None):
        raise ConfigError(
            f"{spec.label} is a fine-tuned encoder: pass the fine-tuned model and its weights_id "
            "(cai2.context.fit_finetuned_assessor builds both)"
        )
    source = encoder if encoder is not None else load_sentence_encoder()
    first = source[0]
    tokenizer, transformer = first.tokenizer, first.auto_model
    directory = cache_dir or cai2_home() / "context"
    key = onnx_cache_key(weights_id or MINILM_SAFETENSORS_SHA256, spec)
    path = directory / f"minilm-{spec.label}-{key}.onnx"
    if not path.exists():
        export_onnx(transformer, tokenizer, spec, path)
    return open_onnx_encoder(path, spec, source)


def open_onnx_encoder(path: Path, spec: EncoderSpec, source: Any) -> OnnxEncoder:
    """The exported graph at ``path`` with the tokenizer, input token table and maximum length of
    ``source``, the ``SentenceTransformer`` it was exported from (or one with the same tokenizer
    and token table, as for a fine-tuned graph whose table stayed frozen)."""
    first = source[0]
    table = first.auto_model.get_input_embeddings().weight.detach().cpu().numpy()
    return OnnxEncoder(
        path, first.tokenizer, table.astype(np.float32), spec, max_length=int(first.max_seq_length)
    )


def load_context_encoder(spec: EncoderSpec = FROZEN_ENCODER) -> Any:
    """The packaged MiniLM for ``spec``: the ``SentenceTransformer`` itself for the torch spec,
    else an :class:`OnnxEncoder` (exported and cached on first use)."""
    if spec.runtime == "torch":
        return load_sentence_encoder()
    if spec.finetuned:
        raise ConfigError(
            f"{spec.label} is fine-tuned on a labelled set; load it with its heads "
            "(load_default_assessor) or train one with fit_finetuned_assessor"
        )
    return load_onnx_encoder(spec)
