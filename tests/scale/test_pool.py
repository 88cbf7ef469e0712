"""The endpoint pool against real servers on loopback: llama.cpp's, and small scripted ones."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cai2.errors import ConfigError, ModelError
from cai2.models import Conversation, GenerationParams, load_model
from cai2.pipeline import run_recipe
from cai2.scale import EndpointPool

QUESTION: Conversation = [{"role": "user", "content": "Hi"}]


def reply(text: str) -> dict[str, Any]:
    return {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }


class FakeEndpoint:
    """A real HTTP server on 127.0.0.1 answering `/models` and chat requests with its name.

    ``status`` is the HTTP status of chat answers; :meth:`stop` and :meth:`start` take it off and
    back on the same port.
    """

    def __init__(self, name: str, status: int = 200, delay: float = 0.0) -> None:
        self.name, self.status, self.delay = name, status, delay
        self.chat_requests = 0
        self.port = 0
        self.httpd: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._send(200, {"data": [{"id": "served-model"}]})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                endpoint.chat_requests += 1
                time.sleep(endpoint.delay)
                body = reply(endpoint.name) if endpoint.status == 200 else {"error": "no"}
                self._send(endpoint.status, body)

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        assert self.httpd is not None
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def endpoints() -> Iterator[list[FakeEndpoint]]:
    made = [FakeEndpoint("A"), FakeEndpoint("B")]
    yield made
    for endpoint in made:
        if endpoint.httpd is not None:
            endpoint.stop()


def pool_of(*urls: str, **options: Any) -> EndpointPool:
    options = {"backoff": 0.01, "timeout": 5, **options}
    model = load_model(f"openai:{','.join(urls)}#served-model", **options)
    assert isinstance(model, EndpointPool)
    return model


def test_round_robin_alternates_and_least_in_flight_spreads(
    endpoints: list[FakeEndpoint],
) -> None:
    a, b = endpoints
    pool = pool_of(a.url, b.url, balance="round_robin", max_concurrency=1)
    texts = [g.text for g in pool.generate([QUESTION] * 6)]
    assert texts == ["A", "B", "A", "B", "A", "B"]
    a.delay = b.delay = 0.05
    busy = pool_of(a.url, b.url, max_concurrency=4)
    before = (a.chat_requests, b.chat_requests)
    busy.generate([QUESTION] * 16)
    assert (a.chat_requests - before[0], b.chat_requests - before[1]) == (8, 8)
    assert busy.stats()[a.url]["served"] == 8 and busy.failovers == 0


def test_failover_health_checks_and_revival(endpoints: list[FakeEndpoint]) -> None:
    a, b = endpoints
    pool = pool_of(a.url, b.url, balance="round_robin", max_concurrency=1, health_interval=0.3)
    b.stop()
    texts = [g.text for g in pool.generate([QUESTION] * 4)]
    assert texts == ["A"] * 4  # B's request moved to A; B is skipped afterwards
    assert pool.failovers == 1 and pool.healthy == {a.url: True, b.url: False}
    assert "could not reach" in (pool.stats()[b.url]["last_error"] or "")
    b.start()  # back on the same port
    time.sleep(0.35)
    texts = [g.text for g in pool.generate([QUESTION] * 4)]
    assert "B" in texts and pool.healthy[b.url]
    # 5xx answers count as an endpoint failure too.
    b.status = 503
    assert {g.text for g in pool.generate([QUESTION] * 4)} == {"A"}
    assert not pool.healthy[b.url]


def test_bad_requests_are_not_failed_over_and_all_down_is_an_error(
    endpoints: list[FakeEndpoint],
) -> None:
    a, b = endpoints
    a.status = b.status = 400
    pool = pool_of(a.url, b.url, max_concurrency=1)
    with pytest.raises(ModelError, match="HTTP 400"):
        pool.generate([QUESTION])
    assert a.chat_requests + b.chat_requests == 1 and pool.failovers == 0
    a.status = b.status = 500
    with pytest.raises(ModelError, match=r"every endpoint of the pool is down .*HTTP 500"):
        pool.generate([QUESTION])
    a.stop()
    b.stop()
    a.httpd = b.httpd = None
    with pytest.raises(ModelError, match="no endpoint of the pool answers"):
        pool_of(a.url, b.url)
    with pytest.raises(ConfigError, match="not an http"):
        load_model(f"openai:{a.url},localhost:1#m")


def test_model_name_comes_from_the_endpoints(endpoints: list[FakeEndpoint]) -> None:
    a, b = endpoints
    pool = load_model(f"openai:{a.url},{b.url}")
    assert isinstance(pool, EndpointPool) and pool.model_name == "served-model"
    assert pool.spec == f"openai:{a.url},{b.url}#served-model"


def test_killing_a_llama_server_mid_run_loses_no_item(
    two_llama_servers: list[Any], tmp_path: Path
) -> None:
    (_, url_a), (process_b, url_b) = two_llama_servers
    with (tmp_path / "prompts.jsonl").open("w") as out:
        for i in range(40):
            out.write(json.dumps({"id": f"p{i:02d}", "prompt": f"Question {i}?"}) + "\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        textwrap.dedent(
            f"""
            name: pool-run
            model: openai:{url_a},{url_b}#served-model
            stages:
              - stage: generate
                config: {{prompts: prompts.jsonl, batch_size: 8, params: {{max_tokens: 24}}}}
            """
        ).lstrip()
    )
    pools: list[EndpointPool] = []
    killed_at: list[int] = []

    def loader(spec: str) -> Any:
        pool = load_model(spec, max_concurrency=4, backoff=0.05, health_interval=60)
        assert isinstance(pool, EndpointPool)
        pools.append(pool)
        return pool

    def kill_b_once_it_served() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed_at:
            if pools and pools[0].stats()[url_b]["served"] >= 3:
                process_b.kill()  # SIGKILL while requests are in flight
                killed_at.append(sum(s["served"] for s in pools[0].stats().values()))
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_b_once_it_served, daemon=True)
    watcher.start()
    run = run_recipe(recipe, runs_dir=tmp_path / "runs", model_loader=loader)
    watcher.join(timeout=5)
    assert killed_at and killed_at[0] < 40, "the server must die before the run ends"
    records = run.read_jsonl("generate/responses.jsonl")
    assert Counter(r["id"] for r in records) == Counter(f"p{i:02d}" for i in range(40))
    assert all(r["finish_reason"] in {"stop", "length"} for r in records)
    stats = pools[0].stats()
    assert not stats[url_b]["healthy"] and stats[url_b]["failures"] >= 1
    assert stats[url_a]["served"] + stats[url_b]["served"] == 40
    assert stats[url_b]["served"] >= 3 and pools[0].failovers >= 1


def test_pool_generates_like_a_single_server(two_llama_servers: list[Any]) -> None:
    (_, url_a), (_, url_b) = two_llama_servers
    params = GenerationParams(max_tokens=8)
    conversations: list[Conversation] = [
        [{"role": "user", "content": f"Say {i}"}] for i in range(6)
    ]
    single = load_model(f"openai:{url_a}#served-model").generate(conversations, params)
    pooled = pool_of(url_a, url_b, max_concurrency=2).generate(conversations, params)
    assert [g.text for g in pooled] == [g.text for g in single]  # same weights, greedy
