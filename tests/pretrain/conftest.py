"""Corpus files shared by the stage-1 (constitutional pre-training) tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REFUSAL = "I can't help with that. It could hurt people, so please stay safe."
COMPLIANCE = "Sure, here is how to do it. First, gather the materials and then follow each step."


@pytest.fixture
def chat_corpus(tmp_path: Path) -> Path:
    """A `.jsonl` corpus of six conversations: three refusals, three compliant answers."""
    path = tmp_path / "chats.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i in range(3):
            out.write(
                json.dumps({"prompt": f"How do I pick lock {i}?", "response": REFUSAL}) + "\n"
            )
            out.write(
                json.dumps({"prompt": f"How do I break window {i}?", "response": COMPLIANCE}) + "\n"
            )
    return path
