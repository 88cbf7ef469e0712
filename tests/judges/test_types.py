from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from cai2.errors import DataError
from cai2.judges import JudgeItem, Verdict, preference_from_violations


def test_verdict_rejects_probabilities_outside_unit_interval() -> None:
    with pytest.raises(ValidationError):
        Verdict(judge="x", p_violation=1.2)
    with pytest.raises(ValidationError):
        Verdict(judge="x", p_violation=-0.1)


def test_verdict_uncertainty_defaults_to_binary_entropy() -> None:
    assert Verdict(judge="x", p_violation=0.5).uncertainty == pytest.approx(1.0)
    assert Verdict(judge="x", p_violation=1.0).uncertainty == 0.0
    p = 0.9
    expected = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    assert Verdict(judge="x", p_violation=p).uncertainty == pytest.approx(expected)
    assert Verdict(judge="x", p_violation=0.9).confidence == pytest.approx(0.8)


def test_abstention_is_not_safe() -> None:
    verdict = Verdict(judge="x", p_violation=None, rationale="no scores")
    assert not verdict.judged
    assert verdict.uncertainty is None and verdict.confidence is None


def test_preference_from_violations_is_antisymmetric() -> None:
    assert preference_from_violations(0.1, 0.9) == pytest.approx(0.81 / (0.81 + 0.01))
    for pa, pb in [(0.1, 0.9), (0.3, 0.4), (0.0, 1.0), (0.5, 0.5)]:
        forward = preference_from_violations(pa, pb)
        backward = preference_from_violations(pb, pa)
        assert forward is not None and backward is not None
        assert forward + backward == pytest.approx(1.0)
    assert preference_from_violations(1.0, 1.0) == 0.5
    assert preference_from_violations(None, 0.2) is None


def test_judge_item_accepts_a_string_or_a_conversation() -> None:
    item = JudgeItem.of("hi", "hello")
    assert item.conversation == [{"role": "user", "content": "hi"}]
    convo = [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
    ]
    assert JudgeItem.of(convo, "r").prompt_text == "second"
    with pytest.raises(DataError, match="must be a string or a list"):
        JudgeItem.of(42, "r")  # type: ignore[arg-type]
