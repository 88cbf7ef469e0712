"""Shared by the benchmarks that draw a figure for the docs (not a benchmark itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(figure: Any, axes: Any, title: str, path: Path) -> None:
    """Title ``axes``, lay ``figure`` out, write it to ``path`` (PNG, 110 dpi) and close it."""
    import matplotlib.pyplot as plt

    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
