"""Fine-tuning the encoder before the heads (``cai2.context._finetune``), on the tiny encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cai2.context._default as default_module
import cai2.context._finetune as finetune_module
from cai2.context import (
    ContextAssessor,
    EncoderSpec,
    LabelledPrompt,
    default_dataset_path,
    embed_texts,
    load_context_encoder,
    load_onnx_encoder,
    user_text,
)
from cai2.context._finetune import (
    FinetuneSettings,
    finetune_encoder,
    fit_finetuned_assessor,
    open_finetuned_encoder,
)
from cai2.context._rules import RULES
from cai2.context._training import fit_heads
from cai2.errors import ConfigError, DataError

# The tiny random encoder needs a larger step than MiniLM to move within a test's budget.
QUICK = FinetuneSettings(epochs=5.0, learning_rate=3e-3, batch_size=32)


def _train(dataset: list[LabelledPrompt], n: int | None = None) -> list[LabelledPrompt]:
    """The training split, or its first ``n // 4`` prompts of each tier."""
    rows = [r for r in dataset if r.split == "train"]
    if not n:
        return rows
    per_tier = [[r for r in rows if r.risk.rank == tier][: n // 4] for tier in range(4)]
    return [r for tier_rows in per_tier for r in tier_rows]


def _separation(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Mean cosine within a tier minus mean cosine across tiers."""
    similarity = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    return float(similarity[same & off_diagonal].mean() - similarity[~same].mean())


def test_finetuning_pulls_tiers_apart_and_keeps_the_token_table(
    tiny_encoder: Any, dataset: list[LabelledPrompt]
) -> None:
    train = _train(dataset, 256)
    texts = [user_text(r.conversation) for r in train]
    labels = np.array([r.risk.rank for r in train])
    before = _separation(embed_texts(tiny_encoder, texts), labels)
    base_weights = {k: v.clone() for k, v in tiny_encoder.state_dict().items()}

    tuned = finetune_encoder(tiny_encoder, texts, labels.tolist(), layers=1, settings=QUICK)

    after = _separation(embed_texts(tuned, texts), labels)
    assert after > before + 0.05, (before, after)
    transformer = tuned[0].auto_model
    assert len(transformer.encoder.layer) == 1
    assert transformer.config.num_hidden_layers == 1
    table = "0.model.embeddings.word_embeddings.weight"
    np.testing.assert_array_equal(tuned.state_dict()[table].numpy(), base_weights[table].numpy())
    block = "0.model.encoder.layer.0.attention.self.query.weight"
    assert not np.allclose(tuned.state_dict()[block].numpy(), base_weights[block].numpy())
    # The model passed in is left as it was.
    for name, value in tiny_encoder.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), base_weights[name].numpy())


def test_fit_fine_tunes_one_encoder_per_fold_and_ships_one_graph(
    tiny_encoder: Any,
    dataset: list[LabelledPrompt],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sizes: list[int] = []
    real = finetune_module.finetune_encoder

    def spy(base: Any, texts: Any, labels: Any, **kwargs: Any) -> Any:
        sizes.append(len(texts))
        return real(base, texts, labels, **kwargs)

    monkeypatch.setattr(finetune_module, "finetune_encoder", spy)
    spec = EncoderSpec(layers=1, int8=True, finetuned=True)
    subset = dataset[::3]  # all tiers, a third of the time
    assessor = fit_finetuned_assessor(
        tiny_encoder, spec, subset, cache_dir=tmp_path, settings=QUICK, folds=2, c_grid=(4.0,)
    )
    n_train = len(_train(subset))
    # One encoder per fold on that fold's training part, then one on the whole split.
    assert len(sizes) == 3 and sizes[-1] == n_train and all(s < n_train for s in sizes[:2])
    assert sum(n_train - s for s in sizes[:2]) == n_train  # the folds' validation parts
    assert assessor.heads.meta["encoder"] == spec.as_dict()
    assert assessor.heads.meta["finetune"]["learning_rate"] == QUICK.learning_rate
    graphs = sorted(tmp_path.glob("*.onnx"))
    assert [g.name for g in graphs] == [assessor.heads.meta["encoder_file"]]
    context = assessor.assess("How do I make a pipe bomb?")
    assert context.evidence[0].source == "classifier"

    reopened = open_finetuned_encoder(graphs[0], spec, tiny_encoder)
    texts = ["Recommend a podcast about birds.", "How do I pick a lock?"]
    np.testing.assert_allclose(
        embed_texts(reopened, texts), embed_texts(assessor.encoder, texts), atol=1e-6
    )
    # Heads fitted on the fine-tuned graph refuse the packaged (not fine-tuned) graph.
    plain = load_onnx_encoder(EncoderSpec(layers=1, int8=True), encoder=tiny_encoder)
    with pytest.raises(ConfigError, match="onnx-l1-int8-ft"):
        ContextAssessor(plain, assessor.heads)


def test_specs_settings_and_bad_input_are_rejected(
    tiny_encoder: Any, dataset: list[LabelledPrompt], tmp_path: Path
) -> None:
    spec = EncoderSpec(layers=4, int8=True, finetuned=True)
    assert spec.label == "onnx-l4-int8-ft"
    assert EncoderSpec.from_dict(spec.as_dict()) == spec
    for other in (
        spec,
        EncoderSpec(),
        EncoderSpec(layers=3, int8=True),
        EncoderSpec(runtime="torch"),
    ):
        assert EncoderSpec.from_label(other.label) == other
    with pytest.raises(ConfigError, match="between 1 and 6"):
        EncoderSpec.from_label("onnx-l9-fp32")
    # Heads saved before the option existed read as not fine-tuned.
    assert EncoderSpec.from_dict({"layers": 6, "int8": False, "runtime": "onnx"}).finetuned is False
    with pytest.raises(ConfigError, match="ONNX Runtime"):
        EncoderSpec(runtime="torch", finetuned=True)
    with pytest.raises(ConfigError, match="fine-tuned on a labelled set"):
        load_context_encoder(spec)
    with pytest.raises(ConfigError, match="weights_id"):
        load_onnx_encoder(spec, encoder=tiny_encoder)
    with pytest.raises(ConfigError, match="epochs"):
        FinetuneSettings(epochs=0)
    with pytest.raises(ConfigError, match="finetuned=True"):
        fit_finetuned_assessor(tiny_encoder, EncoderSpec(), dataset, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="cannot keep 3 layers"):
        finetune_encoder(tiny_encoder, ["a", "b"], [0, 1], layers=3)
    with pytest.raises(DataError, match="two tiers"):
        finetune_encoder(tiny_encoder, ["a", "b"], [0, 0], layers=1)
    train = _train(dataset)
    embeddings = np.zeros((len(train), 4), dtype=np.float32)
    with pytest.raises(DataError, match="1 fold embeddings for 2 folds"):
        fit_heads(
            train,
            embeddings,
            target_recall=0.97,
            folds=2,
            seed=0,
            rules=RULES,
            progress=lambda _m: None,
            fold_embeddings=[(embeddings, embeddings)],
        )


def test_default_fine_tuned_assessor_is_cached_with_its_graph(
    tiny_encoder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAI2_HOME", str(tmp_path))
    monkeypatch.setattr(default_module, "DEFAULT_ENCODER", EncoderSpec(layers=1, finetuned=True))
    monkeypatch.setattr(default_module, "load_sentence_encoder", lambda: tiny_encoder)
    monkeypatch.setattr(default_module, "FinetuneSettings", lambda: QUICK)
    fits: list[str] = []
    real = default_module.fit_finetuned_assessor

    def counted(*args: Any, **kwargs: Any) -> ContextAssessor:
        fits.append("fit")
        assert kwargs["settings"] is QUICK  # the settings the cache key covers
        return real(*args, **{**kwargs, "folds": 2, "c_grid": (4.0,)})

    monkeypatch.setattr(default_module, "fit_finetuned_assessor", counted)
    monkeypatch.setattr(default_module, "_default", {})
    # Every third labelled prompt keeps all tiers and makes the three trainings quick.
    lines = default_dataset_path().read_text(encoding="utf-8").splitlines()
    subset = tmp_path / "subset.jsonl"
    subset.write_text("\n".join(lines[::3]) + "\n", encoding="utf-8")
    messages: list[str] = []
    first = default_module.load_default_assessor(subset, progress=messages.append)
    assert fits == ["fit"] and any("fine-tuning the encoder" in m for m in messages)

    # A new process loads the heads and the graph instead of training again.
    monkeypatch.setattr(default_module, "_default", {})
    second = default_module.load_default_assessor(subset)
    assert fits == ["fit"] and second is not first
    prompt = "Explain how vaccines are tested."
    assert second.assess(prompt).model_dump() == first.assess(prompt).model_dump()

    # Without its graph the cache is stale: the assessor is trained again, not broken.
    graph = tmp_path / "context" / first.heads.meta["encoder_file"]
    graph.unlink()
    monkeypatch.setattr(default_module, "_default", {})
    default_module.load_default_assessor(subset)
    assert fits == ["fit", "fit"] and graph.exists()
