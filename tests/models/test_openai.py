"""The openai backend against real servers on loopback: llama-cpp-python's, and scripted ones."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cai2.errors import ConfigError, ModelError
from cai2.models import Conversation, GenerationParams, load_model
from cai2.models._openai import OpenAIChatModel

QUESTION: Conversation = [{"role": "user", "content": "Hi"}]

OK_BODY = {
    "choices": [
        {"message": {"role": "assistant", "content": "Hello STOP there"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 7, "completion_tokens": 3},
}


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 that answers each request with the next scripted reply.

    A reply is ``(status, body)``; a ``str`` body is sent as-is (for malformed JSON), anything else
    as JSON. After the script runs out, the last reply repeats.
    """

    def __init__(self, replies: list[tuple[int, Any]], delay: float = 0.0) -> None:
        self.replies = replies
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                self._answer(payload)

            def do_GET(self) -> None:
                self._answer(None)

            def _answer(self, payload: Any) -> None:
                with server._lock:
                    server.requests.append(
                        {
                            "path": self.path,
                            "json": payload,
                            "auth": self.headers.get("Authorization"),
                        }
                    )
                    status, body = server.replies[
                        min(len(server.requests), len(server.replies)) - 1
                    ]
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                time.sleep(server.delay)
                # Counted out before the reply goes: once the client has it, it may send its next
                # request, which must not overlap this one in the count.
                with server._lock:
                    server.in_flight -= 1
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def fast_retry_model(url: str, **options: Any) -> OpenAIChatModel:
    model = load_model(f"openai:{url}#m", backoff=0.01, max_retries=2, timeout=5, **options)
    assert isinstance(model, OpenAIChatModel)
    return model


def test_unreachable_server_is_a_model_error(unused_port: int) -> None:
    model = fast_retry_model(f"http://127.0.0.1:{unused_port}/v1")
    with pytest.raises(ModelError, match=r"could not reach .*gave up after 3 attempts"):
        model.generate([QUESTION])


def test_server_errors_are_retried_with_backoff() -> None:
    replies = [(500, {"error": {"message": "overloaded"}}), (503, "busy"), (200, OK_BODY)]
    with ScriptedServer(replies) as server:
        generation = fast_retry_model(server.url).generate(
            [QUESTION], GenerationParams(max_tokens=5, stop=["STOP"])
        )[0]
    assert len(server.requests) == 3
    assert generation.text == "Hello "  # the client trims stops even if the server does not
    assert (generation.prompt_tokens, generation.completion_tokens) == (7, 3)
    sent = server.requests[0]["json"]
    assert sent["model"] == "m" and sent["max_tokens"] == 5 and sent["stop"] == ["STOP"]
    assert sent["messages"] == QUESTION


def test_persistent_server_errors_give_up() -> None:
    with (
        ScriptedServer([(502, {"error": {"message": "bad gateway"}})]) as server,
        pytest.raises(ModelError, match="HTTP 502: bad gateway; gave up after 3 attempts"),
    ):
        fast_retry_model(server.url).generate([QUESTION])
    assert len(server.requests) == 3


def test_rejected_key_is_reported_without_retrying(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with (
        ScriptedServer([(401, {"error": {"message": "invalid api key"}})]) as server,
        pytest.raises(ModelError, match=r"HTTP 401 .*invalid api key.*OPENAI_API_KEY"),
    ):
        fast_retry_model(server.url).generate([QUESTION])
    assert len(server.requests) == 1
    assert server.requests[0]["auth"] == "Bearer sk-from-env"
    with (
        ScriptedServer([(403, {"error": "forbidden"})]) as server,
        pytest.raises(ModelError, match="HTTP 403"),
    ):
        fast_retry_model(server.url, api_key="sk-option").generate([QUESTION])
    assert server.requests[0]["auth"] == "Bearer sk-option"


def test_malformed_and_unexpected_bodies() -> None:
    with (
        ScriptedServer([(200, "{not json")]) as server,
        pytest.raises(ModelError, match="malformed JSON"),
    ):
        fast_retry_model(server.url).generate([QUESTION])
    with (
        ScriptedServer([(200, {"object": "list"})]) as server,
        pytest.raises(ModelError, match="unexpected body"),
    ):
        fast_retry_model(server.url).generate([QUESTION])
    with (
        ScriptedServer([(400, {"error": {"message": "max_tokens too large"}})]) as server,
        pytest.raises(ModelError, match="HTTP 400: max_tokens too large"),
    ):
        fast_retry_model(server.url).generate([QUESTION])
    assert len(server.requests) == 1


def test_concurrency_is_limited_and_order_kept() -> None:
    with ScriptedServer([(200, OK_BODY)], delay=0.1) as server:
        model = fast_retry_model(server.url, max_concurrency=3)
        conversations = [[{"role": "user", "content": f"q{i}"}] for i in range(9)]
        generations = model.generate(conversations)  # type: ignore[arg-type]
    assert len(generations) == 9
    assert server.max_in_flight == 3
    assert sorted(r["json"]["messages"][0]["content"] for r in server.requests) == [
        f"q{i}" for i in range(9)
    ]


def test_model_name_is_taken_from_the_server_when_omitted() -> None:
    with ScriptedServer([(200, {"data": [{"id": "only-model"}]})]) as server:
        model = load_model(f"openai:{server.url}")
        assert model.model_name == "only-model"  # type: ignore[attr-defined]
    with (
        ScriptedServer([(200, {"data": [{"id": "a"}, {"id": "b"}]})]) as server,
        pytest.raises(ConfigError, match="serves 2 models"),
    ):
        load_model(f"openai:{server.url}")
    with pytest.raises(ConfigError, match="http"):
        load_model("openai:localhost:8080")


def test_logprobs_need_a_tokenizer() -> None:
    with (
        ScriptedServer([(200, OK_BODY)]) as server,
        pytest.raises(ModelError, match="needs the `tokenizer` option"),
    ):
        fast_retry_model(server.url).logprobs([QUESTION], ["Hello"])


def test_real_llama_server_generates_and_scores(tiny_llama_server: str, tiny_gguf: Path) -> None:
    model = load_model(
        f"openai:{tiny_llama_server}#served-model", tokenizer="tiny", max_concurrency=2
    )
    local = load_model(f"llamacpp:{tiny_gguf}", n_ctx=512, n_threads=1)
    conversations: list[Conversation] = [QUESTION, [{"role": "user", "content": "Tell a story."}]]
    params = GenerationParams(max_tokens=6)
    remote = model.generate(conversations, params)
    # The server runs the same file with the same template: greedy replies match in-process ones.
    assert [g.text for g in remote] == [g.text for g in local.generate(conversations, params)]
    assert all(0 < g.completion_tokens <= 6 for g in remote)
    continuations = ["Hello! How are you?", "Once upon a time"]
    assert model.logprobs(conversations, continuations) == pytest.approx(
        local.logprobs(conversations, continuations), rel=1e-3, abs=1e-2
    )


@pytest.mark.slow
def test_real_llama_server_with_the_embedded_model(llama_server: Callable[[Path], str]) -> None:
    from cai2.models import embedded_gguf_path

    model = load_model(f"openai:{llama_server(embedded_gguf_path())}", tokenizer="smollm2-135m")
    question: Conversation = [{"role": "user", "content": "What is the capital of France?"}]
    reply = model.generate([question], GenerationParams(max_tokens=12))[0]
    # Q4_1 llama.cpp does not answer "Paris" greedily here (the float32 conversion does), so the
    # check is on scores: the true answer must be the likelier continuation.
    assert reply.completion_tokens > 0 and reply.text
    right, wrong = model.logprobs([question, question], ["Paris.", "Tokyo."])
    assert right > wrong


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    yield
