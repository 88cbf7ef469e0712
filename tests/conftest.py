"""Root fixtures shared by every test package.

Every test gets its own ``CAI2_HOME`` unless it asks for the shared model cache, so tests never
write into the user's real cache and never see each other's files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests must never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh runs directory, also exported as ``CAI2_RUNS_DIR``."""
    path = tmp_path / "runs"
    monkeypatch.setenv("CAI2_RUNS_DIR", str(path))
    return path
