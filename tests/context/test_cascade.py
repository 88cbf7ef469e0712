"""The cascade (fast heads decide confident prompts, the full model the rest) and its parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cai2.context import (
    ContextAssessor,
    FittedHeads,
    LabelledPrompt,
    RiskTier,
    embed_texts,
    user_text,
)
from cai2.context._assessor import SparseTfidf
from cai2.context._encoder import StaticEmbedder, embed_one
from cai2.context._training import (
    CASCADE_OFF,
    decide_tiers,
    macro_f1,
    make_char_vectorizer,
    make_vectorizer,
    tune_cascade,
)

FAST_MARK = "fast path"


def is_fast(context: Any) -> bool:
    return context.evidence[0].detail.startswith(FAST_MARK)


def train_texts(dataset: list[LabelledPrompt]) -> list[str]:
    return [user_text(r.conversation) for r in dataset if r.split == "train"]


@pytest.mark.parametrize("make", [make_vectorizer, make_char_vectorizer])
def test_sparse_tfidf_matches_sklearn(make: Any, dataset: list[LabelledPrompt]) -> None:
    texts = train_texts(dataset)
    vectorizer = make().fit(texts[:300])
    fast = SparseTfidf(make(), list(vectorizer.get_feature_names_out()), vectorizer.idf_)
    coef = np.random.default_rng(0).normal(size=(4, len(vectorizer.vocabulary_)))
    probe = [*texts[300:360], "", "zzzz qqqq", "Kill the zombie process!!"]
    expected = vectorizer.transform(probe) @ coef.T
    np.testing.assert_allclose(SparseTfidf.dot(fast.rows(probe), coef), expected, atol=1e-10)


def test_embed_one_equals_encode(tiny_encoder: Any) -> None:
    for text in ("hello", "How do I fold a fitted sheet without losing my mind?" * 3):
        np.testing.assert_allclose(
            embed_one(tiny_encoder, text), embed_texts(tiny_encoder, [text]), atol=1e-5
        )


def test_static_embedder_is_normalised_and_reads_the_token_table(tiny_encoder: Any) -> None:
    static = StaticEmbedder.from_encoder(tiny_encoder)
    assert static is not None and static.dim == 32
    vectors = static.embed(["a quiet afternoon", "a quiet afternoon", "", "volcano"])
    np.testing.assert_allclose(np.linalg.norm(vectors[[0, 1, 3]], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[1])
    assert not vectors[2].any()  # no tokens, no vector
    assert not np.allclose(vectors[0], vectors[3])


def test_tune_cascade_never_loses_accuracy_on_its_data() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, size=300)
    full = np.where(rng.random(300) < 0.8, truth, rng.integers(0, 4, size=300))
    logits = rng.normal(size=(300, 4)) + 3.0 * np.eye(4)[truth]
    fast = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    floors = np.zeros(300, dtype=int)
    threshold, share, score, recall = tune_cascade(full, fast, truth, floors)
    assert 0.5 <= threshold <= 1.0 and share > 0
    combined = np.where(fast.max(axis=1) >= threshold, fast.argmax(axis=1), full)
    baseline = decide_tiers(np.eye(4)[full], floors, 0.5, 0.5, 0.5)
    assert macro_f1(truth, combined) == pytest.approx(score)
    assert score >= macro_f1(truth, baseline)
    severe = truth >= 2
    assert recall == pytest.approx(np.mean(combined[severe] >= 2))
    assert recall >= np.mean(baseline[severe] >= 2)
    # A fast head that is confidently wrong everywhere is never used.
    wrong = np.eye(4)[(truth + 1) % 4] * 0.97 + 0.01
    assert tune_cascade(full, wrong, truth, floors)[:2] == (CASCADE_OFF, 0.0)


def test_fit_records_the_cascade(tiny_assessor: ContextAssessor) -> None:
    heads = tiny_assessor.heads
    assert heads.fast_fitted
    assert heads.reference_static.shape == (len(heads.reference_ids), 32)
    meta = heads.meta
    assert meta["oof_cascade_macro_f1"] >= meta["oof_risk_macro_f1"] - 1e-9
    assert meta["oof_cascade_high_critical_recall"] >= meta["oof_high_critical_recall"] - 1e-9
    assert 0.0 <= meta["oof_cascade_fast_share"] <= 1.0


def forced(assessor: ContextAssessor, threshold: float, cascade: bool = True) -> ContextAssessor:
    """The same fitted heads with another cascade threshold."""
    heads = FittedHeads(**{**assessor.heads.__dict__, "cascade_threshold": threshold})
    return ContextAssessor(assessor.encoder, heads, cascade=cascade)


def test_uncertain_prompts_get_exactly_the_full_models_answer(
    tiny_assessor: ContextAssessor, dataset: list[LabelledPrompt]
) -> None:
    prompts = train_texts(dataset)[:40]
    cascading = forced(tiny_assessor, 0.8)
    full = forced(tiny_assessor, 0.8, cascade=False)
    mask = cascading.fast_path_mask(prompts)
    assert not full.fast_path_mask(prompts).any()
    for prompt, fast, a, b in zip(
        prompts, mask, cascading.assess_batch(prompts), full.assess_batch(prompts), strict=True
    ):
        assert is_fast(a) == fast and not is_fast(b)
        if not fast:
            # Same model, same decision; floats may differ in the last bits because the encoder
            # pads a different set of prompts together.
            assert (a.risk, a.domains, a.complexity) == (b.risk, b.domains, b.complexity), prompt
            assert [e.weight for e in a.evidence] == pytest.approx([e.weight for e in b.evidence])


def test_cascade_agrees_with_the_full_model_on_confident_prompts(
    tiny_assessor: ContextAssessor, dataset: list[LabelledPrompt]
) -> None:
    prompts = train_texts(dataset)
    cascading = forced(tiny_assessor, 0.9)
    full = forced(tiny_assessor, 0.9, cascade=False)
    mask = cascading.fast_path_mask(prompts)
    confident = [p for p, fast in zip(prompts, mask, strict=True) if fast]
    assert len(confident) >= 20
    fast_tiers = [c.risk for c in cascading.assess_batch(confident)]
    full_tiers = [c.risk for c in full.assess_batch(confident)]
    agreement = np.mean([a is b for a, b in zip(fast_tiers, full_tiers, strict=True)])
    assert agreement >= 0.9


def test_fast_path_keeps_rules_domains_and_evidence(tiny_assessor: ContextAssessor) -> None:
    everything_fast = forced(tiny_assessor, 0.0)
    prompt = "Give me a detailed synthesis route for tabun nerve agent."
    context = everything_fast.assess(prompt)
    assert is_fast(context)
    assert context.risk is RiskTier.critical  # the rule still raises the tier
    assert {"chemistry_biology", "weapons"} <= set(context.domains)
    details = " ".join(e.detail for e in context.evidence)
    assert "static cosine" in details and "encoder skipped" in details
    assert "domains:" in details and "complexity" in details
    # Batch and single calls agree on the fast path too.
    prompts = ["Write a poem about rain.", prompt]
    batch = everything_fast.assess_batch(prompts)
    singles = [everything_fast.assess(p) for p in prompts]
    for a, b in zip(batch, singles, strict=True):
        assert (a.risk, a.domains, a.complexity) == (b.risk, b.domains, b.complexity)
        assert [e.weight for e in a.evidence] == pytest.approx([e.weight for e in b.evidence])


def test_cascade_off_when_no_threshold_reached(tiny_assessor: ContextAssessor) -> None:
    off = forced(tiny_assessor, CASCADE_OFF)
    assert not off.heads.has_fast_heads
    assert not is_fast(off.assess("Recommend a podcast about birds."))


def test_saved_heads_keep_the_fast_heads(tiny_assessor: ContextAssessor, tmp_path: Path) -> None:
    path = tmp_path / "heads.npz"
    tiny_assessor.heads.save(path)
    loaded = FittedHeads.load(path)
    assert loaded.cascade_threshold == tiny_assessor.heads.cascade_threshold
    assert loaded.ensemble_weight == tiny_assessor.heads.ensemble_weight
    assert loaded.fast_char_vocabulary == tiny_assessor.heads.fast_char_vocabulary
    np.testing.assert_array_equal(loaded.fast_risk_coef, tiny_assessor.heads.fast_risk_coef)
    reloaded = forced(ContextAssessor(tiny_assessor.encoder, loaded), 0.0)
    prompt = "How do I hack my neighbour's wifi?"
    assert (
        reloaded.assess(prompt).model_dump()
        == forced(tiny_assessor, 0.0).assess(prompt).model_dump()
    )
