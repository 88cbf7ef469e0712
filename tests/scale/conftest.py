"""Fixtures for scale-out tests: one real Ray runtime per session, llama.cpp servers on loopback."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _model_test_helpers() -> Any:
    """The model tests' conftest (llama.cpp server helpers, tiny GGUF writer), loaded by path."""
    name = "cai2_tests_models_conftest"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "models" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


helpers = _model_test_helpers()
start_llama_server = helpers.start_llama_server
stop_process = helpers.stop_process
write_tiny_gguf = helpers.write_tiny_gguf


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[Any]:
    """A real local Ray runtime with 2 CPUs, started once for the session."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from cai2.scale import ensure_ray

    ray = ensure_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny float32 GGUF (real SmolLM2 tokenizer, random weights)."""
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture
def two_llama_servers(tiny_gguf: Path, tmp_path: Path) -> Iterator[list[Any]]:
    """Two llama-cpp-python servers on loopback serving the tiny GGUF: [(process, base URL)]."""
    started = [start_llama_server(tiny_gguf, tmp_path / f"server-{i}.log") for i in range(2)]
    yield started
    for process, _ in started:
        if process.poll() is None:
            stop_process(process)
