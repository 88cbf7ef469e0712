"""Where cai2 keeps caches and, by default, runs: ``$CAI2_HOME`` or ``~/.cache/cai2``."""

from __future__ import annotations

import os
from pathlib import Path


def cai2_home() -> Path:
    """The cai2 home directory (created on first use)."""
    home = Path(os.environ.get("CAI2_HOME") or Path.home() / ".cache" / "cai2").expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home
