"""Generation throughput of the embedded model on each backend → bench/results/generation.json.

Measures, on the same prompts with greedy decoding and ``max_tokens`` new tokens per reply:

* ``hf`` (transformers, float32) at batch 1 and at several batch sizes, including the default;
* ``llamacpp`` in process at batch 1 (one conversation at a time);
* ``openai`` against llama-cpp-python's own server on loopback, with concurrent requests;
* torch float32 matmul GFLOP/s, the CPU's compute ceiling for the hf path.

Tokens/s counts the tokens actually generated (replies may end early at end-of-sequence) over the
wall time of the whole call. Run: ``.venv/bin/python bench/generation.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from cai2.models import (
    DEFAULT_GENERATION_BATCH_SIZE,
    DEFAULT_GENERATION_SPEC,
    ChatModel,
    Conversation,
    GenerationParams,
    embedded_gguf_path,
    embedded_model_dir,
    load_model,
)

RESULTS = Path(__file__).parent / "results" / "generation.json"

TOPICS = [
    "photosynthesis", "the water cycle", "volcanoes", "the French Revolution", "black holes",
    "compound interest", "the immune system", "plate tectonics", "machine learning", "honeybees",
    "the printing press", "climate change", "prime numbers", "the Roman Empire", "electricity",
    "coral reefs", "the internet", "vaccines", "the moon landing", "recycling", "earthquakes",
    "the human heart", "solar panels", "chess openings", "bread baking", "the stock market",
    "glaciers", "the piano", "rainbows", "dinosaurs", "democracy", "sleep",
]  # fmt: skip
TEMPLATES = ["Explain {} to a ten-year-old.", "Write three facts about {}."]


def prompts(count: int) -> list[Conversation]:
    """``count`` distinct one-turn prompts of varied length."""
    texts = [t.format(topic) for t in TEMPLATES for topic in TOPICS]
    return [[{"role": "user", "content": text}] for text in texts[:count]]


def measure(model: ChatModel, conversations: list[Conversation], max_tokens: int) -> dict[str, Any]:
    """Generate once for warm-up, then time one call over all conversations."""
    print(f"timing {model.spec} on {len(conversations)} prompts…", file=sys.stderr, flush=True)
    params = GenerationParams(max_tokens=max_tokens)
    model.generate(conversations[:1], GenerationParams(max_tokens=4))
    started = time.perf_counter()
    generations = model.generate(conversations, params)
    seconds = time.perf_counter() - started
    tokens = sum(g.completion_tokens for g in generations)
    return {
        "conversations": len(conversations),
        "completion_tokens": tokens,
        "seconds": round(seconds, 2),
        "tok_s": round(tokens / seconds, 1),
    }


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """float32 matmul throughput of torch on this CPU."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    seconds = time.perf_counter() - started
    return round(2 * size**3 * repeats / seconds / 1e9, 1)


def machine() -> dict[str, Any]:
    import torch
    import transformers

    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        import llama_cpp

        llama_version = llama_cpp.__version__
    except ModuleNotFoundError:
        llama_version = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "llama_cpp_python": llama_version,
        "load_average_at_start": list(os.getloadavg()),
    }


def start_server(gguf: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        "--chat_format", "chat_template.default",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        try:
            if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("llama_cpp.server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="Fewer prompts, for a smoke run.")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="*", default=[16, 32, 64], help="hf batch sizes to time."
    )
    args = parser.parse_args()
    scale = 4 if args.quick else 1
    results: dict[str, Any] = {
        "note": (
            "Wall-clock throughput on a shared 2-core machine; other processes may have been "
            "running (see load averages), so treat small differences as noise."
        ),
        "machine": machine(),
        "max_tokens": args.max_tokens,
        "decoding": "greedy",
        "matmul_gflops": matmul_gflops(),
    }
    embedded_model_dir()  # convert outside the timings

    hf1 = load_model("hf:smollm2-135m", batch_size=1)
    results["hf_batch1"] = measure(hf1, prompts(8 // scale), args.max_tokens)
    del hf1
    batch_sizes = sorted({*args.batch_sizes, DEFAULT_GENERATION_BATCH_SIZE})
    results["hf_batches"] = {}
    for batch_size in batch_sizes:
        model = load_model("hf:smollm2-135m", batch_size=batch_size)
        count = max(batch_size, 64 // scale)
        results["hf_batches"][str(batch_size)] = measure(model, prompts(count), args.max_tokens)
        del model

    llama = load_model("llamacpp:smollm2-135m")
    results["llamacpp_batch1"] = measure(llama, prompts(16 // scale), args.max_tokens)
    del llama

    process, base_url = start_server(embedded_gguf_path())
    try:
        remote = load_model(f"openai:{base_url}#smollm2", max_concurrency=4)
        results["openai_llama_cpp_server_concurrency4"] = measure(
            remote, prompts(16 // scale), args.max_tokens
        ) | {
            "server": "python -m llama_cpp.server (llama-cpp-python); it serves one request at a "
            "time, so concurrent requests queue rather than share a batch"
        }
    finally:
        process.terminate()
        process.wait(timeout=30)

    default_key = str(DEFAULT_GENERATION_BATCH_SIZE)
    if DEFAULT_GENERATION_SPEC.startswith("hf:"):
        default_tok_s = results["hf_batches"][default_key]["tok_s"]
    else:
        default_tok_s = results["llamacpp_batch1"]["tok_s"]
    results["default_path"] = {
        "spec": DEFAULT_GENERATION_SPEC,
        "batch_size": DEFAULT_GENERATION_BATCH_SIZE,
    }
    results["default_path_tok_s"] = default_tok_s
    results["llamacpp_batch1_tok_s"] = results["llamacpp_batch1"]["tok_s"]
    results["ratio_vs_llamacpp_batch1"] = round(default_tok_s / results["llamacpp_batch1_tok_s"], 2)
    results["target_ratio"] = 1.5
    results["load_average_at_end"] = list(os.getloadavg())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
