"""AdvBench from the installed pyrit package (evaluation only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai2.benchmarks import ADVBENCH_SIZE, load_advbench
from cai2.errors import DataError


def test_advbench_has_520_distinct_instructions() -> None:
    prompts = load_advbench()
    assert len(prompts) == ADVBENCH_SIZE
    assert len(set(prompts)) >= 500
    assert all(p.strip() == p and p for p in prompts)


def test_malformed_seed_file_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bench.prompt"
    path.write_text("dataset_name: x\nseeds:\n- value: fine\n- value: ''\n")
    with pytest.raises(DataError, match=r"bench\.prompt:4 at `seeds\.1\.value`"):
        load_advbench(path)
    path.write_text("seeds: 3\n")
    with pytest.raises(DataError, match="`seeds` list"):
        load_advbench(path)
    path.write_text("seeds: [\n")
    with pytest.raises(DataError, match="malformed YAML"):
        load_advbench(path)
