"""Helpers to write small constitution files for the constitution tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml


def principle_data(principle_id: str, **extra: Any) -> dict[str, Any]:
    """A minimal valid principle mapping with id ``principle_id``."""
    return {
        "id": principle_id,
        "statement": f"Statement of {principle_id}.",
        "critique_request": f"Critique for {principle_id}.",
        "revision_request": f"Revision for {principle_id}.",
        "comparison_question": f"Comparison for {principle_id}?",
        **extra,
    }


def layer_data(layer_id: str, *principles: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A layer mapping holding ``principles``."""
    return {"id": layer_id, "principles": list(principles), **extra}


@pytest.fixture
def principle() -> Callable[..., dict[str, Any]]:
    """Builder of minimal valid principle mappings: ``principle("id", severity="high")``."""
    return principle_data


@pytest.fixture
def layer() -> Callable[..., dict[str, Any]]:
    """Builder of layer mappings: ``layer("id", principle("a"), activation={...})``."""
    return layer_data


@pytest.fixture
def write_constitution(tmp_path: Path) -> Callable[..., Path]:
    """Write a constitution (mapping or YAML text) to ``tmp_path/<file>``; returns the path."""

    def write(content: dict[str, Any] | str, file: str = "org.yaml") -> Path:
        path = tmp_path / file
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write
