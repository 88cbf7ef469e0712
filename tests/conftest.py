"""Root fixtures shared by every test package.

Every test gets its own ``CAI2_HOME`` unless it asks for the shared model cache, so tests never
write into the user's real cache and never see each other's files. ``tiny_encoder`` and
``tiny_assessor`` are a tiny random-weight MiniLM-shaped sentence encoder and a context assessor
fitted on it, for fast tests of anything that assesses context.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # cai2.context takes a second to import: only the fixtures that need it do
    from cai2.context import ContextAssessor, LabelledPrompt

# Tests must never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def _frozen_default_context_encoder() -> Iterator[None]:
    """The frozen MiniLM stands in for the default context encoder in every test.

    The shipped default (a fine-tuned encoder) trains for minutes on first use, and everything
    that assesses context without an assessor of its own (`context_prompt`, CAI 2.0 critique, the
    red-team loop, the guard) would pay that, some of it in module- and session-scoped fixtures.
    The frozen encoder, the default before 2026-11-29, trains in seconds. The slow tests of
    ``tests/context/test_minilm.py`` ask for the shipped one by name
    (``load_default_assessor(spec=cai2.context.DEFAULT_ENCODER)``); tests that set
    ``DEFAULT_ENCODER`` themselves still win.
    """
    import cai2.context._default as default_module
    from cai2.context import FROZEN_ENCODER

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(default_module, "DEFAULT_ENCODER", FROZEN_ENCODER)
        yield


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh runs directory, also exported as ``CAI2_RUNS_DIR``."""
    path = tmp_path / "runs"
    monkeypatch.setenv("CAI2_RUNS_DIR", str(path))
    return path


POSTGRES_USER = "postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; drop to the `postgres` account when we are root.
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without `runuser` to start PostgreSQL")
        return [runuser, "-u", POSTGRES_USER, "--", *command]
    return command


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a throwaway PostgreSQL cluster on a free loopback port."""
    pytest.importorskip("psycopg")
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    # Not under pytest's tmp dir: that one is private to root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="cai2-postgres-"))
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, POSTGRES_USER)
        shutil.chown(data, POSTGRES_USER)
    port = _free_port()
    subprocess.run(
        _as_server_user(
            [initdb, "-D", str(data), "-U", POSTGRES_USER, "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


TINY_HIDDEN = 32


def build_tiny_encoder_dir(target: Path) -> Path:
    """A sentence-transformers directory with MiniLM's tokenizer and a tiny random BERT."""
    import torch
    from transformers import BertConfig, BertModel

    from cai2.context import sentence_encoder_dir

    source = sentence_encoder_dir()
    target.mkdir(parents=True, exist_ok=True)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
    ):
        shutil.copy(source / name, target / name)
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text())
    pooling["word_embedding_dimension"] = TINY_HIDDEN
    (target / "1_Pooling").mkdir(exist_ok=True)
    (target / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    vocab_size = json.loads((source / "config.json").read_text())["vocab_size"]
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(target, safe_serialization=True)
    return target


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tiny random-weight sentence encoder with MiniLM's real tokenizer."""
    from sentence_transformers import SentenceTransformer

    directory = build_tiny_encoder_dir(tmp_path_factory.mktemp("tiny-encoder"))
    return SentenceTransformer(str(directory), device="cpu", local_files_only=True)


@pytest.fixture(scope="session")
def dataset() -> list[LabelledPrompt]:
    """The built-in labelled prompt set."""
    from cai2.context import load_context_dataset

    return load_context_dataset()


@pytest.fixture(scope="session")
def tiny_assessor(tiny_encoder: Any, dataset: list[LabelledPrompt]) -> ContextAssessor:
    """An assessor fitted on the train split with the tiny encoder (2 folds, one C, for speed)."""
    from cai2.context import ContextAssessor

    return ContextAssessor.fit(tiny_encoder, dataset, folds=2, c_grid=(4.0,))
