"""Benchmark scale-out on this machine → bench/results/scale.json.

Protocol (fixed before measuring):

- ``ray_overhead_ratio``: the `generate` stage's work (:class:`cai2.scale.GenerateWork`: the
  embedded SmolLM2-135M through transformers, greedy, ``--prompts`` prompts of the built-in set,
  shards of 8) run by the :class:`~cai2.scale.LocalExecutor` in this process and by the
  :class:`~cai2.scale.RayExecutor` with one actor on one CPU, torch on 1 thread in both: the same
  compute, so the difference is what Ray adds (a separate process, task dispatch, moving shards and
  results). One thread because torch's multi-threaded kernels slow down erratically when other
  jobs share the 2 cores. Model loading is excluded on both sides (workers are set up before the
  clock starts). The ratio is ``ray_seconds / local_seconds - 1`` (0.10 means Ray took 10%
  longer); each side runs ``--repeats`` times, interleaved, and the fastest run of each counts.
  For information, two actors (one per core) are reported as ``ray_two_actors_speedup`` over the
  same local run.
- ``two_endpoint_speedup``: ``--requests`` chat requests (``max_tokens`` 32, greedy) against
  llama-cpp-python servers on loopback serving the embedded GGUF, each server on 1 thread; one
  server (2 requests in flight) versus an :class:`~cai2.scale.EndpointPool` of two servers (4 in
  flight). Speedup = seconds with one / seconds with two; fastest of ``--repeats`` runs each.
- ``load_average``: ``os.getloadavg()`` before and after (other work on this shared 2-core machine
  slows both sides of every comparison; read the numbers with it).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/scale.py`` (about 5 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from cai2.models import GenerationParams, embedded_gguf_path, load_model
from cai2.pipeline import load_prompts
from cai2.scale import EndpointPool, GenerateWork, LocalExecutor, RayExecutor, ensure_ray, run_items
from cai2.store import JsonlWriter

RESULTS = Path(__file__).parent / "results" / "scale.json"
TARGET_OVERHEAD = 0.15


@dataclass
class ThreadedGenerateWork(GenerateWork):
    """GenerateWork that pins torch to ``threads`` threads in whichever process sets it up."""

    threads: int = 1

    def setup(self) -> None:
        import torch

        torch.set_num_threads(self.threads)
        super().setup()


def time_executor(executor: Any, work: GenerateWork, items: list[tuple[str, str, str]]) -> float:
    """Seconds to run ``work`` over ``items`` into a scratch JSONL (setup already done)."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        JsonlWriter(Path(scratch) / "out.jsonl", id_key="id", fsync=False) as writer,
    ):
        began = time.perf_counter()
        report = run_items(executor, work, items, writer, item_id=lambda t: t[0], shard_size=8)
        seconds = time.perf_counter() - began
    assert report.written == len(items), report
    return seconds


def ray_overhead(prompts: int, max_tokens: int, repeats: int) -> dict[str, Any]:
    items = [(p.id, p.kind, p.prompt) for p in load_prompts("default")[:prompts]]
    params = GenerationParams(max_tokens=max_tokens)

    def work(threads: int) -> ThreadedGenerateWork:
        return ThreadedGenerateWork(spec="hf:smollm2-135m", params=params, threads=threads)

    ensure_ray(num_cpus=2)
    local_work = work(1)
    local_work.setup()
    local = LocalExecutor()

    def on_ray(workers: int, cpus: int) -> float:
        # One executor at a time: the Ray runtime has just the machine's 2 CPUs to hand out.
        with RayExecutor(workers=workers, num_cpus=cpus) as executor:
            ray_work = work(cpus)
            executor.start(ray_work)
            executor.actor_pids()  # returns once every actor has loaded its model
            return time_executor(executor, ray_work, items)

    times: dict[str, list[float]] = {"local": [], "ray_one_actor": [], "ray_two_actors": []}
    for _ in range(repeats):
        times["local"].append(time_executor(local, local_work, items))
        times["ray_one_actor"].append(on_ray(1, 1))
        times["ray_two_actors"].append(on_ray(2, 1))
    best = {name: min(values) for name, values in times.items()}
    return {
        "ray_overhead_ratio": round(best["ray_one_actor"] / best["local"] - 1, 4),
        "ray_two_actors_speedup": round(best["local"] / best["ray_two_actors"], 3),
        "seconds": {name: [round(v, 2) for v in values] for name, values in times.items()},
        "prompts": len(items),
        "max_tokens": max_tokens,
        "shard_size": 8,
        "model": "hf:smollm2-135m",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(gguf: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
        "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "1024", "--n_threads", "1", "--chat_format", "chat_template.default",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"llama_cpp.server did not start: {log.read_text()[-1000:]}")


def two_endpoints(requests: int, repeats: int) -> dict[str, Any]:
    prompts = [p.prompt for p in load_prompts("default")]
    conversations: Any = [
        [{"role": "user", "content": prompts[i % len(prompts)]}] for i in range(requests)
    ]
    params = GenerationParams(max_tokens=32)
    with tempfile.TemporaryDirectory() as scratch:
        servers = [start_server(embedded_gguf_path(), Path(scratch) / f"s{i}.log") for i in (0, 1)]
        try:
            (_, url_a), (_, url_b) = servers
            one = load_model(f"openai:{url_a}#smollm2", max_concurrency=2)
            pool = load_model(f"openai:{url_a},{url_b}#smollm2", max_concurrency=4)
            assert isinstance(pool, EndpointPool)
            one.generate(conversations[:2], params)  # warm both servers
            pool.generate(conversations[:4], params)
            times: dict[str, list[float]] = {"one_endpoint": [], "two_endpoints": []}
            tokens: dict[str, int] = {}
            for _ in range(repeats):
                for name, model in (("one_endpoint", one), ("two_endpoints", pool)):
                    began = time.perf_counter()
                    generations = model.generate(conversations, params)
                    times[name].append(time.perf_counter() - began)
                    tokens[name] = sum(g.completion_tokens for g in generations)
            served = {url: stats["served"] for url, stats in pool.stats().items()}
        finally:
            for process, _ in servers:
                process.terminate()
                process.wait(timeout=10)
    best = {name: min(values) for name, values in times.items()}
    return {
        "two_endpoint_speedup": round(best["one_endpoint"] / best["two_endpoints"], 3),
        "seconds": {name: [round(v, 2) for v in values] for name, values in times.items()},
        "completion_tokens": tokens,
        "tok_s": {name: round(tokens[name] / best[name], 1) for name in best},
        "requests": requests,
        "pool_requests_per_endpoint": list(served.values()),
        "server": "llama-cpp-python server, embedded SmolLM2-135M Q4_1 GGUF, 1 thread each",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    load_before = [round(v, 2) for v in os.getloadavg()]
    started = time.perf_counter()
    overhead = ray_overhead(args.prompts, args.max_tokens, args.repeats)
    endpoints = two_endpoints(args.requests, args.repeats)
    import ray
    import torch

    result = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "note": (
            "Wall-clock times on a shared 2-core machine; see load_average. "
            "ray_overhead_ratio = ray_seconds / local_seconds - 1 (one Ray actor vs in-process, "
            "1 torch thread each); two_endpoint_speedup = one-server seconds / two-server seconds."
        ),
        "ray_overhead_ratio": overhead["ray_overhead_ratio"],
        "two_endpoint_speedup": endpoints["two_endpoint_speedup"],
        "targets": {"ray_overhead_ratio_at_most": TARGET_OVERHEAD},
        "targets_met": overhead["ray_overhead_ratio"] <= TARGET_OVERHEAD,
        "ray": overhead,
        "endpoints": endpoints,
        "load_average": {"before": load_before, "after": [round(v, 2) for v in os.getloadavg()]},
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "ray": ray.__version__,
        },
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    keys = ("ray_overhead_ratio", "two_endpoint_speedup", "load_average")
    print(json.dumps({k: result[k] for k in keys}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
