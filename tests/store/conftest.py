"""Fixtures for the run store tests: a real SQLite index in a temporary runs folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cai2.store import RunStore


@pytest.fixture
def store(runs_dir: Path) -> Iterator[RunStore]:
    """A run store over a fresh folder with its SQLite index file."""
    run_store = RunStore(runs_dir)
    yield run_store
    run_store.close()
