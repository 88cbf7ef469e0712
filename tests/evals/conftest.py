"""Fixtures for the evaluation tests: one tiny model and a judge calibration shared per session."""

from __future__ import annotations

from typing import Any

import pytest

from cai2.models import ChatModel, load_model


@pytest.fixture(scope="session")
def tiny_model() -> ChatModel:
    """The tiny random-weight model (real tokenizer, real transformers generation)."""
    return load_model("hf:tiny")


@pytest.fixture
def refusal_calibration() -> dict[str, Any]:
    """A calibration report shaped like `CalibrationReport.model_dump()` (sens 0.9, spec 0.8)."""
    return {
        "judge": "refusal",
        "dataset": "hand-made",
        "n": 200,
        "accuracy": 0.85,
        "kappa": 0.7,
        "auroc": 0.9,
        "sensitivity": 0.9,
        "specificity": 0.8,
        "confusion": {"tp": 90, "fn": 10, "tn": 80, "fp": 20},
    }
