"""Fixtures for the model layer: the tiny model, a tiny GGUF, free ports and local servers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from cai2.models import load_model, tiny_model_dir
from cai2.models._hf import HFChatModel

TINY_GGUF_LAYERS = 2
TINY_GGUF_HIDDEN = 64
TINY_GGUF_FFN = 128
TINY_GGUF_HEADS = 4
TINY_GGUF_KV_HEADS = 2


@pytest.fixture(scope="session")
def tiny_model() -> HFChatModel:
    """The tiny random-weight model with the real SmolLM2 tokenizer (batch size 4)."""
    model = load_model("hf:tiny", batch_size=4)
    assert isinstance(model, HFChatModel)
    return model


def write_tiny_gguf(path: Path, *, seed: int = 0, vocab_size: int = 2048) -> Path:
    """Write a small float32 Llama GGUF with a cut-down SmolLM2 tokenizer and the real template.

    The vocabulary is the first ``vocab_size`` tokens of the real SmolLM2 tokenizer (special
    tokens, all bytes, then the earliest merges), so every text still tokenizes. Reading a GGUF's
    49k-token vocabulary takes transformers about a minute; this one loads in seconds, in both
    transformers and llama.cpp.
    """
    import json

    from gguf import GGUFWriter

    source = tiny_model_dir()
    spec = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    by_id = {index: token for token, index in spec["model"]["vocab"].items()}
    tokens = [by_id[i] for i in range(vocab_size)]
    kept = set(tokens)
    merges = []
    for merge in spec["model"]["merges"]:
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        if left in kept and right in kept and left + right in kept:
            merges.append(f"{left} {right}")
    special = {entry["id"] for entry in spec["added_tokens"] if entry.get("special")}
    writer = GGUFWriter(path, "llama")
    writer.add_context_length(2048)
    writer.add_embedding_length(TINY_GGUF_HIDDEN)
    writer.add_block_count(TINY_GGUF_LAYERS)
    writer.add_feed_forward_length(TINY_GGUF_FFN)
    writer.add_head_count(TINY_GGUF_HEADS)
    writer.add_head_count_kv(TINY_GGUF_KV_HEADS)
    writer.add_rope_dimension_count(TINY_GGUF_HIDDEN // TINY_GGUF_HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # all float32
    # The same tokenizer settings as the embedded GGUF.
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if i in special else 1 for i in range(vocab_size)])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)
    writer.add_chat_template((source / "chat_template.jinja").read_text(encoding="utf-8"))
    rng = np.random.default_rng(seed)
    head_dim = TINY_GGUF_HIDDEN // TINY_GGUF_HEADS
    kv_width = TINY_GGUF_KV_HEADS * head_dim

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    def ones() -> np.ndarray:
        return np.ones(TINY_GGUF_HIDDEN, dtype=np.float32)

    writer.add_tensor("token_embd.weight", weight(vocab_size, TINY_GGUF_HIDDEN))
    writer.add_tensor("output_norm.weight", ones())
    for layer in range(TINY_GGUF_LAYERS):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", ones())
        writer.add_tensor(f"{block}.attn_q.weight", weight(TINY_GGUF_HIDDEN, TINY_GGUF_HIDDEN))
        writer.add_tensor(f"{block}.attn_k.weight", weight(kv_width, TINY_GGUF_HIDDEN))
        writer.add_tensor(f"{block}.attn_v.weight", weight(kv_width, TINY_GGUF_HIDDEN))
        writer.add_tensor(f"{block}.attn_output.weight", weight(TINY_GGUF_HIDDEN, TINY_GGUF_HIDDEN))
        writer.add_tensor(f"{block}.ffn_norm.weight", ones())
        writer.add_tensor(f"{block}.ffn_gate.weight", weight(TINY_GGUF_FFN, TINY_GGUF_HIDDEN))
        writer.add_tensor(f"{block}.ffn_up.weight", weight(TINY_GGUF_FFN, TINY_GGUF_HIDDEN))
        writer.add_tensor(f"{block}.ffn_down.weight", weight(TINY_GGUF_HIDDEN, TINY_GGUF_FFN))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="session")
def gguf_writer() -> Callable[..., Path]:
    """:func:`write_tiny_gguf`, for tests that need a second, different GGUF."""
    return write_tiny_gguf


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny float32 GGUF (real SmolLM2 tokenizer, random weights)."""
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_llama_server(
    gguf: Path, log: Path, *, n_ctx: int = 1024, n_threads: int = 1
) -> tuple[subprocess.Popen[bytes], str]:
    """Start llama-cpp-python's OpenAI-compatible server on loopback: (process, base URL)."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf),
        "--model_alias", "served-model",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--n_threads", str(n_threads),
        "--chat_format", "chat_template.default",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/models", timeout=1.0).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"llama_cpp.server did not start in time: {log.read_text()[-2000:]}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process this test started, then kill it if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@pytest.fixture
def llama_server(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """Start llama-cpp-python's server: ``llama_server(gguf) -> base URL``; stopped after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(gguf: Path) -> str:
        process, base_url = start_llama_server(gguf, tmp_path / f"server-{len(started)}.log")
        started.append(process)
        return base_url

    yield start
    for process in started:
        stop_process(process)


@pytest.fixture(scope="session")
def tiny_llama_server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's server serving the tiny GGUF; yields its base URL."""
    log = tmp_path_factory.mktemp("server") / "llama-server.log"
    process, base_url = start_llama_server(tiny_gguf, log)
    try:
        yield base_url
    finally:
        stop_process(process)
