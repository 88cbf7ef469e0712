"""Fixtures for the red-team tests: the tiny model and the refusal judge (no training needed)."""

from __future__ import annotations

import pytest

from cai2.judges import RefusalJudge
from cai2.models import ChatModel, load_model


@pytest.fixture(scope="session")
def tiny() -> ChatModel:
    """The tiny random-weight model (real tokenizer, real generation); it never refuses."""
    return load_model("hf:tiny", batch_size=16)


@pytest.fixture(scope="session")
def refusal_judge() -> RefusalJudge:
    """P(violation) = P(the reply is not a refusal): the cheapest real success judge."""
    return RefusalJudge()
