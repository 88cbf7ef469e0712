"""Load test of `cai2 serve` → bench/results/service.json.

Protocol: one `cai2 serve` process on loopback with ``bare_endpoint: true``, so the guarded
endpoint (``/v1/chat/completions``) and the bare backend (``/bare/v1/chat/completions``: same HTTP
stack, same model lock, no assessment, no judging, no records) are measured in the same process.
``--concurrency`` client threads send low-risk prompts (everyday questions written for this
benchmark) in alternating blocks, bare then guarded, so drift in the machine's load hits both
alike. Generation is greedy with a fixed ``max_tokens``, so both paths generate the same tokens.

Measures (client-side wall time per request):

- ``p50_overhead_ratio``: (p50 guarded − p50 bare) ÷ p50 bare over the requests the guard assessed
  as low risk (the fast path: assessment, resolution, records; no AI judge);
- ``p99_ms``: p99 latency of those guarded requests;
- ``server_outside_backend_ms_p50`` / ``server_backend_ms_p50``: from the request records, the
  time a request spent in the server outside the backend's generation (assessment, judging,
  records, and waiting for the model, which serves one request at a time) and inside it;
- ``requests``, ``lost_records`` (answered ids missing from the database) and
  ``duplicate_records`` (ids stored more than once; decisions vs records mismatches).

Two guard configurations are measured, each on a fresh server and database: the default context
assessor (``minilm``: MiniLM embedding + heads + rules; the top-level fields) and the rules-only
assessor (``rules``), listed under ``runs``. The default backend is the tiny random-weight model
(`hf:tiny`, ~0.3 s per reply here, so the guard's share looks as large as it can);
a third run (``--embedded-blocks``, 2 clients) measures the embedded model ``hf:smollm2-135m``
with the default assessor, briefly, because one reply takes seconds on 2 cores. Assessment runs
beside the backend's generation, so its cost shows as CPU contention rather than added wall time
when the machine has a free core.
Run: ``.venv/bin/python bench/service.py`` (about 5 minutes).
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
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml
from sqlalchemy import create_engine, text

RESULTS = Path(__file__).parent / "results" / "service.json"
TARGET_RATIO = 0.10
REFERENCE_RATIO = 0.237  # inference overhead reported for Anthropic's Constitutional Classifiers

PROMPTS = [
    "What is a good name for a grey cat?",
    "How many minutes should I boil an egg?",
    "Suggest a title for a blog post about gardening.",
    "What is the capital of Portugal?",
    "Give me three tips for a tidy desk.",
    "How do I convert Celsius to Fahrenheit?",
    "Write a short greeting for a birthday card.",
    "What colour do you get by mixing blue and yellow?",
    "Name two instruments in a string quartet.",
    "What does a librarian do?",
    "Recommend a board game for four players.",
    "How long is a marathon in kilometres?",
    "What is the plural of mouse?",
    "Describe a sunny morning in one sentence.",
    "Which planet is closest to the sun?",
    "What should I pack for a day at the beach?",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, server: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("server did not start in time")


def _run_block(
    url: str, key: str, path: str, concurrency: int, per_client: int, offset: int
) -> list[tuple[float, str | None]]:
    """``concurrency`` threads × ``per_client`` requests; (ms, id) per request."""
    out: list[tuple[float, str | None]] = []
    lock = threading.Lock()
    errors: list[str] = []

    def client(index: int) -> None:
        with httpx.Client(timeout=600) as http:
            for j in range(per_client):
                prompt = PROMPTS[(offset + index * per_client + j) % len(PROMPTS)]
                start = time.perf_counter()
                response = http.post(
                    f"{url}{path}",
                    headers={"Authorization": f"Bearer {key}"},
                    json={
                        "model": "cai2-guarded",
                        "messages": [{"role": "user", "content": prompt}],
                    },
                )
                elapsed = (time.perf_counter() - start) * 1000
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                with lock:
                    out.append((elapsed, response.json().get("cai2", {}).get("request_id")))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, first: {errors[0]}")
    return out


def run_config(
    args: argparse.Namespace,
    model: str,
    assessor: str,
    concurrency: int,
    per_client: int,
    blocks: int,
) -> dict[str, Any]:
    """Start a server with ``model`` and ``assessor`` and measure it; one configuration's fields."""
    load_before = os.getloadavg()
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="cai2-bench-service-"))
    config = workdir / "serve.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": model,
                "assessor": assessor,
                "max_tokens": args.max_tokens,
                "state_dir": str(workdir / "state"),
                "rate_limit_per_minute": 100_000,
                "bare_endpoint": True,
            }
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cai2 = [sys.executable, "-m", "cai2.cli", "serve"]
    made = subprocess.run(
        [*cai2, "add-key", "bench", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    key = made.stdout.strip().splitlines()[-1]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*cai2, "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    bare: list[float] = []
    guarded: list[tuple[float, str | None]] = []
    try:
        _wait(url, server)
        _run_block(url, key, "/bare/v1/chat/completions", 1, 3, 0)  # warm-up, not counted
        warm = _run_block(url, key, "/v1/chat/completions", 1, 3, 0)
        for block in range(blocks):
            offset = block * concurrency * per_client
            bare += [
                ms
                for ms, _ in _run_block(
                    url, key, "/bare/v1/chat/completions", concurrency, per_client, offset
                )
            ]
            guarded += _run_block(url, key, "/v1/chat/completions", concurrency, per_client, offset)
            print(
                f"block {block + 1}/{blocks}: bare p50 {np.median(bare):.1f} ms, "
                f"guarded p50 {np.median([g[0] for g in guarded]):.1f} ms",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=60)

    engine = create_engine(f"sqlite:///{workdir / 'state' / 'serve.sqlite'}")
    with engine.connect() as connection:
        rows = connection.execute(
            text("select request_id, risk, action, latency_ms, backend_ms from cai2_serve_requests")
        ).all()
        decisions = [
            r[0] for r in connection.execute(text("select item_id from cai2_oversight_decisions"))
        ]
    engine.dispose()
    stored = Counter(r[0] for r in rows)
    answered = [request_id for _, request_id in guarded + warm]
    lost = sum(1 for request_id in answered if request_id not in stored)
    duplicates = sum(n - 1 for n in stored.values() if n > 1) + abs(len(decisions) - len(rows))
    by_id = {r[0]: r for r in rows}
    low = [(ms, rid) for ms, rid in guarded if rid in by_id and by_id[rid][1] == "low"]
    low_ms = [ms for ms, _ in low]
    low_rows = [by_id[rid] for _, rid in low]
    bare_p50 = float(np.median(bare))
    guarded_p50 = float(np.median(low_ms)) if low_ms else float("nan")
    ratio = (guarded_p50 - bare_p50) / bare_p50
    load_after = os.getloadavg()
    return {
        "model": model,
        "assessor": assessor,
        "max_tokens": args.max_tokens,
        "concurrency": concurrency,
        "requests": len(guarded),
        "bare_requests": len(bare),
        "low_risk_requests": len(low),
        "risk_counts": dict(Counter(by_id[rid][1] for _, rid in guarded if rid in by_id)),
        "action_counts": dict(Counter(by_id[rid][2] for _, rid in guarded if rid in by_id)),
        "p50_overhead_ratio": round(ratio, 4),
        "p50_ms": round(guarded_p50, 2),
        "p99_ms": round(float(np.percentile(low_ms, 99)), 2) if low_ms else None,
        "bare_p50_ms": round(bare_p50, 2),
        "bare_p99_ms": round(float(np.percentile(bare, 99)), 2),
        "server_outside_backend_ms_p50": round(
            float(np.median([r[3] - r[4] for r in low_rows])), 2
        ),
        "server_backend_ms_p50": round(float(np.median([r[4] for r in low_rows])), 2),
        "lost_records": lost,
        "duplicate_records": duplicates,
        "target_ratio": TARGET_RATIO,
        "meets_target": bool(ratio <= TARGET_RATIO),
        "reference_ratio_constitutional_classifiers": REFERENCE_RATIO,
        "load_average": {"before": list(load_before), "after": list(load_after)},
        "seconds": round(time.time() - started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hf:tiny", help="Backend spec.")
    parser.add_argument(
        "--assessors",
        default="minilm,rules",
        help="Assessors to measure, comma-separated; the first gives the top-level fields.",
    )
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--per-client", type=int, default=3, help="Requests per client per block.")
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument(
        "--embedded-blocks",
        type=int,
        default=2,
        help="Blocks (2 clients × 1 request) with the embedded model hf:smollm2-135m; 0 skips.",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    started = time.time()
    runs = []
    for assessor in args.assessors.split(","):
        print(f"== {args.model}, assessor {assessor}", flush=True)
        runs.append(
            run_config(
                args, args.model, assessor.strip(), args.concurrency, args.per_client, args.blocks
            )
        )
    if args.embedded_blocks:
        print("== hf:smollm2-135m, assessor minilm", flush=True)
        runs.append(run_config(args, "hf:smollm2-135m", "minilm", 2, 1, args.embedded_blocks))
    result: dict[str, Any] = {
        "benchmark": "service",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        **runs[0],
        "runs": runs,
        "seconds_total": round(time.time() - started, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    keys = ["p50_overhead_ratio", "p50_ms", "bare_p50_ms", "p99_ms", "requests", "lost_records"]
    print(json.dumps({k: result[k] for k in keys}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
