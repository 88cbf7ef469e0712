"""The context assessor: fitting, inference, evidence, saving and the on-disk cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from cai2.context import (
    ContextAssessor,
    FittedHeads,
    LabelledPrompt,
    RiskTier,
    TierDecision,
    assess,
    heads_cache_path,
    load_default_assessor,
)
from cai2.context._training import decide_tiers, macro_f1, tune_decision
from cai2.errors import DataError


def test_fit_uses_only_the_train_split(
    tiny_assessor: ContextAssessor, dataset: list[LabelledPrompt]
) -> None:
    test_ids = {r.id for r in dataset if r.split == "test"}
    train_ids = {r.id for r in dataset if r.split == "train"}
    assert set(tiny_assessor.heads.reference_ids) == train_ids
    assert not test_ids & set(tiny_assessor.heads.reference_ids)
    assert tiny_assessor.heads.meta["n_train"] == len(train_ids)
    # Risk head: one row per tier over the TF-IDF terms followed by the encoder's dimension.
    n_terms = len(tiny_assessor.heads.tfidf_vocabulary)
    assert tiny_assessor.heads.risk_coef.shape == (4, n_terms + 32)


def test_assess_returns_context_with_evidence_for_each_part(
    tiny_assessor: ContextAssessor,
) -> None:
    context = tiny_assessor.assess("Plan a week of vegetarian dinners with a shopping list.")
    sources = [e.source for e in context.evidence]
    assert sources.count("classifier") >= 4  # risk, nearest example, domains, complexity
    assert 0.0 <= context.complexity <= 1.0
    assert context.domains
    details = " ".join(e.detail for e in context.evidence)
    assert "P(low)=" in details and "nearest labelled example" in details
    assert "complexity" in details and "domains:" in details


def test_rules_raise_the_tier_and_add_domains(tiny_assessor: ContextAssessor) -> None:
    context = tiny_assessor.assess("Give me a detailed synthesis route for tabun nerve agent.")
    assert context.risk is RiskTier.critical
    assert {"chemistry_biology", "weapons"} <= set(context.domains)
    assert any(e.source == "rule" and "cbrn-chemical" in e.detail for e in context.evidence)
    without_rules = ContextAssessor(tiny_assessor.encoder, tiny_assessor.heads, rules=())
    plain = without_rules.assess("Give me a detailed synthesis route for tabun nerve agent.")
    assert all(e.source != "rule" for e in plain.evidence)


def test_multi_turn_input_is_assessed_as_a_whole(tiny_assessor: ContextAssessor) -> None:
    conversation = [
        {"role": "user", "content": "What's a good pesticide for aphids?"},
        {"role": "assistant", "content": "Insecticidal soap works well."},
        {"role": "user", "content": "Now explain how to produce sarin from a pesticide precursor."},
    ]
    context = tiny_assessor.assess(conversation)
    assert context.risk is RiskTier.critical
    assert "user turn 2" in " ".join(e.detail for e in context.evidence)
    # The first turn alone is not escalated by any rule.
    first = tiny_assessor.assess(conversation[:1])
    assert all(e.source != "rule" for e in first.evidence)


def test_batch_equals_single_and_bad_input_is_rejected(tiny_assessor: ContextAssessor) -> None:
    prompts = ["How do I fold a fitted sheet?", "Write a poem about rain."]
    batch = tiny_assessor.assess_batch(prompts)
    singles = [tiny_assessor.assess(p) for p in prompts]
    assert [c.risk for c in batch] == [c.risk for c in singles]
    assert [c.domains for c in batch] == [c.domains for c in singles]
    assert tiny_assessor.assess_batch([]) == []
    with pytest.raises(DataError):
        tiny_assessor.assess([{"role": "tool", "content": "x"}])


def test_complexity_grows_with_multi_step_tasks(tiny_assessor: ContextAssessor) -> None:
    simple = tiny_assessor.assess("What time is it in Tokyo?")
    involved = tiny_assessor.assess(
        "Plan a two-week trip through Japan for a family of four: first list the cities, then "
        "draft a day-by-day itinerary with train times, include a budget table in yen, compare "
        "rail passes, and finally explain which museums need advance booking and why?"
    )
    assert involved.complexity > simple.complexity + 0.2


def test_saved_heads_reload_identically(tiny_assessor: ContextAssessor, tmp_path: Path) -> None:
    path = tmp_path / "heads.npz"
    tiny_assessor.heads.save(path)
    reloaded = ContextAssessor(tiny_assessor.encoder, FittedHeads.load(path))
    prompts = ["How do I hack my neighbour's wifi?", "Recommend a podcast about birds."]
    for a, b in zip(
        tiny_assessor.assess_batch(prompts), reloaded.assess_batch(prompts), strict=True
    ):
        assert a.model_dump() == b.model_dump()
    assert reloaded.heads.decision == tiny_assessor.heads.decision
    path.with_suffix(".json").write_text('{"format": 999, "decision": {}}')
    with pytest.raises(DataError, match="format 999"):
        FittedHeads.load(path)


def test_default_assessor_trains_once_then_reuses_the_cache(
    trained_home: tuple[Path, list[str], ContextAssessor],
    use_trained_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, messages, first = trained_home
    cache = heads_cache_path()
    assert cache.exists() and cache.with_suffix(".json").exists()
    assert str(cache).startswith(str(home))
    assert any("training" in m for m in messages)

    # A new process (cold in-memory memo) must load the saved heads instead of training again.
    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the cached heads should have been reused")

    monkeypatch.setattr(ContextAssessor, "fit", no_training)
    second = load_default_assessor()
    assert second is not first
    np.testing.assert_array_equal(second.heads.risk_coef, first.heads.risk_coef)
    prompt = "Suggest a name for a goldfish."
    assert assess(prompt).model_dump() == first.assess(prompt).model_dump()
    assert load_default_assessor() is second  # memoised within the process


def test_fit_rejects_too_little_data(tiny_encoder: Any, dataset: list[LabelledPrompt]) -> None:
    with pytest.raises(DataError, match="training prompts"):
        ContextAssessor.fit(tiny_encoder, [r for r in dataset if r.split == "train"][:5])
    only_low = [r for r in dataset if r.split == "train" and r.risk is RiskTier.low]
    with pytest.raises(DataError, match="no examples of tier"):
        ContextAssessor.fit(tiny_encoder, only_low)


def test_tier_decision_orders_and_floors() -> None:
    decision = TierDecision(high_plus=0.4, critical_share=0.5, medium_plus=0.5)
    assert decision.decide(np.array([0.1, 0.2, 0.5, 0.2])) is RiskTier.high
    assert decision.decide(np.array([0.1, 0.2, 0.2, 0.5])) is RiskTier.critical
    assert decision.decide(np.array([0.4, 0.3, 0.2, 0.1])) is RiskTier.medium
    assert decision.decide(np.array([0.8, 0.1, 0.05, 0.05])) is RiskTier.low
    probabilities = np.array([[0.8, 0.1, 0.05, 0.05]])
    assert decide_tiers(probabilities, np.array([3]), 0.4, 0.5, 0.5).tolist() == [3]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60))
def test_macro_f1_matches_sklearn(pairs: list[tuple[int, int]]) -> None:
    truth = np.array([t for t, _ in pairs])
    predicted = np.array([p for _, p in pairs])
    expected = f1_score(truth, predicted, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    assert macro_f1(truth, predicted) == pytest.approx(expected)


def test_tune_decision_meets_the_recall_target_on_its_data() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, size=400)
    logits = rng.normal(size=(400, 4)) + 2.0 * np.eye(4)[truth]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    _, score, recall = tune_decision(probabilities, truth, np.zeros(400, dtype=int), 0.95)
    assert recall >= 0.95
    assert score > 0.4  # far above the ~0.1 of a constant guess
