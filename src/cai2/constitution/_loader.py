"""Loading constitutions from YAML: built-in names, paths, ``extends`` chains and their cycles."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from cai2.config import YamlDocument, read_yaml
from cai2.constitution._checks import check_constitution, config_error
from cai2.constitution._schema import Constitution
from cai2.errors import ConfigError

BUILTIN_CONSTITUTIONS: tuple[str, ...] = (
    "cai-1.0",
    "cai-2.0",
    "cai-2.0-healthcare",
    "cai-2.0-finance",
    "cai-2.0-cybersecurity",
    "cai-2.0-creative-writing",
    "cai-2.0-education",
)
"""Names of the constitutions shipped with cai2 (files in ``cai2/data/constitutions``)."""


def builtin_constitution_path(name: str) -> Path:
    """Path of the YAML file of built-in constitution ``name``.

    Raises:
        ConfigError: if ``name`` is not a built-in.
    """
    if name not in BUILTIN_CONSTITUTIONS:
        raise ConfigError(
            f"unknown built-in constitution `{name}`; use one of "
            f"{', '.join(BUILTIN_CONSTITUTIONS)} or a path to a YAML file"
        )
    folder = resources.files("cai2").joinpath("data", "constitutions")
    return Path(str(folder.joinpath(f"{name}.yaml")))


def load_constitution(name_or_path: str | Path) -> Constitution:
    """Load a constitution by built-in name or path, with its whole ``extends`` chain.

    The file is validated against the schema, checked for duplicate ids, unknown domains and
    conditions that can never fire, and flattened once so inheritance errors surface here.

    Args:
        name_or_path: A name in :data:`BUILTIN_CONSTITUTIONS` or a path to a YAML file.

    Raises:
        ConfigError: with file, line and key path of the first problem.
    """
    return _load(name_or_path, base_dir=None, chain=(), referrer=None)


def _load(
    reference: str | Path,
    *,
    base_dir: Path | None,
    chain: tuple[Path, ...],
    referrer: Constitution | None,
) -> Constitution:
    path = _locate(reference, base_dir, referrer)
    key = path.resolve()
    if key in chain:
        names = [p.name for p in (*chain, key)]
        start = names.index(key.name)
        cycle = " → ".join(names[start:])
        assert referrer is not None  # a cycle needs at least one `extends`
        raise config_error(
            referrer, ("extends",), f"cycle in `extends`: {cycle}; remove one of the links"
        )
    document = _read_cached(path, *_file_stamp(path))
    if not isinstance(document.data, dict):
        raise ConfigError(
            "a constitution must be a YAML mapping with at least `name` and `layers`",
            file=path,
            line=1,
        )
    constitution = document.validate(Constitution)
    constitution._document = document
    constitution._source = path
    check_constitution(constitution)
    if constitution.extends is not None:
        constitution._parent = _load(
            constitution.extends, base_dir=path.parent, chain=(*chain, key), referrer=constitution
        )
    if referrer is None:
        # Flatten once so inheritance problems (clashing ids, bad overrides) are load errors.
        constitution.flatten()
    return constitution


def _file_stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=64)
def _read_cached(path: Path, mtime_ns: int, size: int) -> YamlDocument:
    """Parse once per file version: pure-Python YAML parsing of a large constitution is slow,
    and packs re-read the same parents. The stamp makes an edited file parse again."""
    del mtime_ns, size  # part of the cache key only
    return read_yaml(path)


def _locate(reference: str | Path, base_dir: Path | None, referrer: Constitution | None) -> Path:
    if isinstance(reference, str) and reference in BUILTIN_CONSTITUTIONS:
        return builtin_constitution_path(reference)
    path = Path(reference)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.is_file():
        return path
    message = (
        f"constitution `{reference}` not found: not a built-in "
        f"({', '.join(BUILTIN_CONSTITUTIONS)}) and no file at {path}"
    )
    if referrer is not None:
        raise config_error(referrer, ("extends",), message)
    raise ConfigError(message)
