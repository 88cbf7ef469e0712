"""The ``openai`` backend: any OpenAI-compatible server (vLLM, llama.cpp, a hosted API) over HTTP.

Spec: ``openai:http://127.0.0.1:8080/v1#model-name``; several comma-separated base URLs
(``openai:http://a:8000/v1,http://b:8000/v1#model``) make an endpoint pool with load balancing and
failover (:class:`cai2.scale.EndpointPool`). Requests run ``max_concurrency`` at a time on
a thread pool; connection errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import httpx
from pydantic import Field

from cai2.config import StrictModel, validate_with_location
from cai2.errors import ConfigError, DataError, ModelError
from cai2.models._stopping import ProgressCallback, trim_at_stop
from cai2.models._types import ChatModel, Conversation, Generation, GenerationParams

_RETRIED_STATUS = {408, 409, 429, 500, 502, 503, 504}


class EndpointError(ModelError):
    """An endpoint could not answer (unreachable, or 429/5xx after retries); another may."""


class OpenAIOptions(StrictModel):
    """Options of the ``openai`` backend (``load_model("openai:URL#model", **options)``)."""

    api_key: str | None = Field(
        None, description="Bearer token; defaults to the `OPENAI_API_KEY` environment variable."
    )
    max_concurrency: int = Field(8, ge=1, le=256, description="Requests in flight at once.")
    timeout: float = Field(120.0, gt=0, description="Seconds to wait for one response.")
    max_retries: int = Field(
        4, ge=0, le=20, description="Retries of a request after a connection error, 429 or 5xx."
    )
    backoff: float = Field(
        0.5, ge=0, description="Seconds before the first retry; doubled for each further one."
    )
    tokenizer: str | None = Field(
        None,
        description=(
            "Local tokenizer whose chat template matches the served model (`hf:` target such as "
            "`smollm2-135m`, or a directory); `logprobs` needs it to render prompts."
        ),
    )


def load_openai_model(
    target: str, *, progress: ProgressCallback | None = None, **options: Any
) -> ChatModel:
    """Factory registered as the ``openai`` backend (a pool when the target lists several URLs)."""
    if "," in target.partition("#")[0]:
        from cai2.scale._pool import load_endpoint_pool

        return load_endpoint_pool(target, progress=progress, **options)
    settings = validate_with_location(OpenAIOptions, options)
    base_url, _, model_name = target.partition("#")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"`openai:{target}`: the target must be an http(s) base URL such as "
            f"`openai:http://127.0.0.1:8080/v1#model-name`"
        )
    return OpenAIChatModel(
        base_url, model_name or None, spec=f"openai:{target}", options=settings, progress=progress
    )


class OpenAIChatModel:
    """A model behind an OpenAI-compatible HTTP API.

    Args:
        base_url: The API root, ending in ``/v1`` for most servers.
        model_name: The ``model`` field of requests; ``None`` asks the server's ``/models`` and
            takes its only model.
        spec: The spec string reported as :attr:`spec`.
        options: Backend options.
        progress: Called as ``progress(done, total)`` after each finished request.
    """

    def __init__(
        self,
        base_url: str,
        model_name: str | None,
        *,
        spec: str | None = None,
        options: OpenAIOptions | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.options = options or OpenAIOptions()
        self.base_url = base_url.rstrip("/")
        self.spec = spec or f"openai:{base_url}#{model_name or ''}"
        self.progress = progress
        api_key = self.options.api_key or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=self.options.timeout,
            limits=httpx.Limits(max_connections=self.options.max_concurrency),
        )
        self._tokenizer: Any = None
        # Pool threads render prompts at once; transformers' lazy import is not thread-safe.
        self._tokenizer_lock = threading.Lock()
        self.model_name = model_name or self._only_served_model()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def _only_served_model(self) -> str:
        listing = self._request("GET", "/models")
        names = [str(m.get("id")) for m in listing.get("data") or [] if isinstance(m, dict)]
        if len(names) != 1:
            raise ConfigError(
                f"{self.base_url} serves {len(names)} models ({', '.join(names) or 'none'}); name "
                f"one in the spec, e.g. `openai:{self.base_url}#{names[0] if names else 'model'}`"
            )
        return names[0]

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        """One API call with retries; returns the decoded JSON body."""
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                response = self._client.request(method, url, json=payload)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                problem = f"could not reach {url} ({type(exc).__name__}: {exc})"
            else:
                if response.status_code < 400:
                    return _decode_json(response, url)
                if response.status_code in (401, 403):
                    raise ModelError(
                        f"{url} rejected the request with HTTP {response.status_code} "
                        f"({_error_text(response)}); check the API key (the `api_key` option or "
                        f"the OPENAI_API_KEY environment variable)"
                    )
                problem = f"{url} answered HTTP {response.status_code}: {_error_text(response)}"
                if response.status_code not in _RETRIED_STATUS:
                    raise ModelError(problem)
            if attempt >= self.options.max_retries:
                raise EndpointError(
                    f"{problem}; gave up after {attempt + 1} attempts. Is the server running at "
                    f"{self.base_url}?"
                )
            time.sleep(self.options.backoff * 2**attempt)
            attempt += 1

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams | None = None
    ) -> list[Generation]:
        """Generate one assistant reply per conversation, ``max_concurrency`` requests at a time."""
        params = params or GenerationParams()
        total = len(conversations)
        done = 0
        lock = threading.Lock()

        def run(conversation: Conversation) -> Generation:
            nonlocal done
            generation = self._generate_one(conversation, params)
            with lock:
                done += 1
                if self.progress is not None:
                    self.progress(done, total)
            return generation

        with ThreadPoolExecutor(max_workers=self.options.max_concurrency) as pool:
            return list(pool.map(run, conversations))

    def _generate_one(self, conversation: Conversation, params: GenerationParams) -> Generation:
        payload: dict[str, Any] = {
            "model": self.model_name,
            "messages": list(conversation),
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            payload["stop"] = list(params.stop)
        if params.seed is not None:
            payload["seed"] = params.seed
        body = self._request("POST", "/chat/completions", payload)
        try:
            choice = body["choices"][0]
            content = choice["message"].get("content") or ""
            usage = body.get("usage") or {}
            finish = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ModelError(
                f"{self.base_url}/chat/completions returned an unexpected body (no "
                f"choices[0].message): {json.dumps(body)[:200]}"
            ) from exc
        text, _ = trim_at_stop(str(content), params.stop)
        reason: Literal["stop", "length"] = "length" if finish == "length" else "stop"
        return Generation(
            text=text,
            finish_reason=reason,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )

    def logprobs(
        self, conversations: Sequence[Conversation], continuations: Sequence[str]
    ) -> list[float]:
        """Sum of token log-probabilities of each continuation as the assistant's reply.

        Uses the legacy ``/completions`` endpoint with ``echo`` and ``logprobs``, which llama.cpp's
        and vLLM's servers support: the prompt is the conversation rendered with the chat template
        of the ``tokenizer`` option, followed by the continuation.

        Raises:
            ModelError: if the ``tokenizer`` option is not set or the server returns no prompt
                log-probabilities.
        """
        if len(conversations) != len(continuations):
            raise DataError(
                f"logprobs got {len(conversations)} conversations and {len(continuations)} "
                f"continuations; pass one continuation per conversation"
            )
        pairs = list(zip(conversations, continuations, strict=True))
        with ThreadPoolExecutor(max_workers=self.options.max_concurrency) as pool:
            return list(pool.map(lambda pair: self._logprob_one(*pair), pairs))

    def _render(self, conversation: Conversation) -> str:
        if self.options.tokenizer is None:
            raise ModelError(
                f"`logprobs` over the openai backend ({self.spec}) needs the `tokenizer` option: "
                f"a local tokenizer with the served model's chat template, e.g. "
                f"`tokenizer='smollm2-135m'` for SmolLM2"
            )
        with self._tokenizer_lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                from cai2.models._hf import resolve_hf_directory

                self._tokenizer = AutoTokenizer.from_pretrained(
                    resolve_hf_directory(self.options.tokenizer)
                )
        text = self._tokenizer.apply_chat_template(
            list(conversation), add_generation_prompt=True, tokenize=False
        )
        return str(text)

    def _logprob_one(self, conversation: Conversation, continuation: str) -> float:
        if not continuation:
            return 0.0
        prompt = self._render(conversation)
        payload = {
            "model": self.model_name,
            "prompt": prompt + continuation,
            "echo": True,
            "logprobs": 1,
            "max_tokens": 1,
            "temperature": 0.0,
        }
        body = self._request("POST", "/completions", payload)
        try:
            logprobs = body["choices"][0]["logprobs"]
            tokens = logprobs["tokens"]
            values = logprobs["token_logprobs"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelError(
                f"{self.base_url}/completions returned no prompt log-probabilities (it needs "
                f"`echo` with `logprobs`, which this server may not support): "
                f"{json.dumps(body)[:200]}"
            ) from exc
        # Offsets are not comparable across servers (llama.cpp leaves special tokens out of them),
        # so align from the end: drop the generated tokens, then take the echoed tokens that
        # spell out the continuation.
        generated = int((body.get("usage") or {}).get("completion_tokens", 1))
        index = len(tokens) - generated - 1
        covered, total = "", 0.0
        while index >= 0 and len(covered) < len(continuation):
            covered = str(tokens[index]) + covered
            total += float(values[index] or 0.0)
            index -= 1
        if not covered.endswith(continuation):
            raise ModelError(
                f"{self.base_url}/completions echoed tokens that do not end with the continuation "
                f"({covered[-60:]!r} vs {continuation[-60:]!r}); cannot score it on this server"
            )
        return total

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.spec!r})"


def _decode_json(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(
            f"{url} returned malformed JSON (HTTP {response.status_code}): {response.text[:200]!r}"
        ) from exc


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:200] or "no body"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", body["error"]))[:200]
    return json.dumps(body)[:200]
