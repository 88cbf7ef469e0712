"""Fixtures for the constitutional-embedding tests: the tiny model and directions trained on it."""

from __future__ import annotations

import pytest

from cai2.embeddings import ConstitutionalEmbeddings, load_examples, train_embeddings
from cai2.models import HFChatModel, load_model

PRINCIPLES = ("harmless.no_serious_harm", "harmless.no_crime_facilitation", "honest.calibration")


@pytest.fixture(scope="session")
def tiny() -> HFChatModel:
    """The tiny random-weight model (real SmolLM2 tokenizer and chat template)."""
    model = load_model("hf:tiny", batch_size=4)
    assert isinstance(model, HFChatModel)
    return model


@pytest.fixture(scope="session")
def trained(tiny: HFChatModel) -> ConstitutionalEmbeddings:
    """Directions for three principles of the built-in set, learned on the tiny model."""
    embeddings, _ = train_embeddings(tiny, load_examples(principles=PRINCIPLES))
    return embeddings
