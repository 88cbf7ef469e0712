"""The ONNX Runtime encoder: same embeddings as the PyTorch model, truncation, int8, caching."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cai2.context import ContextAssessor, LabelledPrompt, embed_texts
from cai2.context._encoder import StaticEmbedder
from cai2.context._onnx import EncoderSpec, OnnxEncoder, encoder_spec, load_onnx_encoder
from cai2.errors import ConfigError

TEXTS = [
    "What is the boiling point of water at sea level?",
    "hi",
    "Explain, step by step and with worked examples, how compound interest grows my savings.",
]


def _onnx(tiny_encoder: Any, tmp_path: Path, layers: int, int8: bool = False) -> OnnxEncoder:
    spec = EncoderSpec(layers=layers, int8=int8)
    return load_onnx_encoder(spec, encoder=tiny_encoder, cache_dir=tmp_path, weights_id="tiny")


def test_all_layers_in_float32_match_the_sentence_transformer(
    tiny_encoder: Any, tmp_path: Path
) -> None:
    encoder = _onnx(tiny_encoder, tmp_path, layers=2)
    expected = embed_texts(tiny_encoder, TEXTS)
    # Batched with padding (different lengths) and one at a time give the same vectors.
    np.testing.assert_allclose(embed_texts(encoder, TEXTS), expected, atol=1e-5)
    np.testing.assert_allclose(embed_texts(encoder, TEXTS[1:2]), expected[1:2], atol=1e-5)
    single = encoder.encode(TEXTS[0], normalize_embeddings=True)
    assert single.shape == (expected.shape[1],)


def test_fewer_layers_match_the_truncated_torch_model(tiny_encoder: Any, tmp_path: Path) -> None:
    import torch

    encoder = _onnx(tiny_encoder, tmp_path, layers=1)
    model = copy.deepcopy(tiny_encoder[0].auto_model).eval()
    model.encoder.layer = model.encoder.layer[:1]
    with torch.inference_mode():
        batch = tiny_encoder.tokenizer([TEXTS[2]], return_tensors="pt")
        hidden = model(**batch).last_hidden_state[0].mean(dim=0)
    expected = (hidden / hidden.norm()).numpy()
    np.testing.assert_allclose(embed_texts(encoder, TEXTS[2:])[0], expected, atol=1e-5)
    # ... and they differ from the full model's output.
    full = embed_texts(tiny_encoder, TEXTS[2:])[0]
    assert float(np.abs(full - expected).max()) > 1e-3


def test_int8_is_close_to_float32_and_the_export_is_cached(
    tiny_encoder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp32 = embed_texts(_onnx(tiny_encoder, tmp_path, layers=2), TEXTS)
    int8_encoder = _onnx(tiny_encoder, tmp_path, layers=2, int8=True)
    int8 = embed_texts(int8_encoder, TEXTS)
    cosines = (fp32 * int8).sum(axis=1)
    assert cosines.min() > 0.9 and not np.allclose(fp32, int8, atol=1e-6)
    assert (
        int8_encoder.path.stat().st_size
        < (tmp_path / next(p.name for p in tmp_path.glob("minilm-onnx-l2-fp32-*.onnx")))
        .stat()
        .st_size
    )

    def no_export(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the cached graph should have been reused")

    monkeypatch.setattr("cai2.context._onnx.export_onnx", no_export)
    again = _onnx(tiny_encoder, tmp_path, layers=2, int8=True)
    assert again.path == int8_encoder.path
    np.testing.assert_allclose(embed_texts(again, TEXTS), int8, atol=1e-6)


def test_spec_validation_and_labels(tiny_encoder: Any, tmp_path: Path) -> None:
    assert EncoderSpec(layers=4, int8=True).label == "onnx-l4-int8"
    assert EncoderSpec.from_dict(None) == EncoderSpec(runtime="torch")
    spec = EncoderSpec(layers=3)
    assert EncoderSpec.from_dict(spec.as_dict()) == spec
    with pytest.raises(ConfigError, match="between 1 and 6"):
        EncoderSpec(layers=0)
    with pytest.raises(ConfigError, match="runtime 'onnx' for 4 layers in int8"):
        EncoderSpec(layers=4, int8=True, runtime="torch")
    with pytest.raises(ConfigError, match="asks for 3 layers; the model has 2"):
        _onnx(tiny_encoder, tmp_path, layers=3)
    assert encoder_spec(tiny_encoder) == EncoderSpec(runtime="torch")
    assert encoder_spec(object()) is None


def test_assessor_records_the_encoder_and_refuses_mismatched_heads(
    tiny_encoder: Any,
    tiny_assessor: ContextAssessor,
    dataset: list[LabelledPrompt],
    tmp_path: Path,
) -> None:
    encoder = _onnx(tiny_encoder, tmp_path, layers=1, int8=True)
    assert StaticEmbedder.from_encoder(encoder) is not None  # the cascade's fast path still works
    assessor = ContextAssessor.fit(encoder, dataset, folds=2, c_grid=(4.0,))
    assert assessor.heads.meta["encoder"] == {
        "layers": 1,
        "int8": True,
        "runtime": "onnx",
        "finetuned": False,
    }
    assert assessor.heads.fast_fitted
    context = assessor.assess("How do I reset my router password?")
    assert context.risk.value in ("low", "medium", "high", "critical")
    path = tmp_path / "heads.npz"
    assessor.heads.save(path)
    from cai2.context import FittedHeads

    reloaded = ContextAssessor(encoder, FittedHeads.load(path))
    assert reloaded.assess("How do I reset my router password?") == context
    with pytest.raises(
        ConfigError, match="trained on onnx-l1-int8 embeddings but the encoder is torch-l6-fp32"
    ):
        ContextAssessor(tiny_encoder, FittedHeads.load(path))
    with pytest.raises(ConfigError, match="trained on torch-l6-fp32 embeddings"):
        ContextAssessor(encoder, tiny_assessor.heads)


def test_the_rust_tokenizer_gives_the_ids_of_the_transformers_call(tiny_encoder: Any) -> None:
    tokenizer = tiny_encoder.tokenizer
    static = StaticEmbedder(tokenizer, np.eye(tokenizer.vocab_size, 4, dtype=np.float32), 12)
    assert static._backend is not None
    long_text = "word " * 50
    for text in [*TEXTS, long_text, "Ünïcödé — ok?"]:
        expected = tokenizer(text, add_special_tokens=False, truncation=True, max_length=12)
        assert static._backend.encode(text, add_special_tokens=False).ids == expected["input_ids"]
    # The wrapper's own settings are untouched by the copy (transformers keeps using them).
    assert tokenizer(long_text, truncation=True, max_length=40)["input_ids"].__len__() == 40
