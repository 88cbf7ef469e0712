"""A pool of OpenAI-compatible endpoints behind one :class:`~cai2.models.ChatModel`.

Spec: ``openai:http://a:8000/v1,http://b:8000/v1#model``. Each request goes to one healthy endpoint
(fewest requests in flight, or round robin); an endpoint that fails (unreachable, or 429/5xx after
``endpoint_retries``) is marked down and the request moves to another endpoint. A down endpoint is
probed again (``GET /models``) once ``health_interval`` seconds have passed and rejoins when it
answers. Requests are stateless, so resending one elsewhere is safe; a pipeline stage still writes
each item's result exactly once, because only the stage's writer appends results.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
from pydantic import Field

from cai2.config import validate_with_location
from cai2.errors import ConfigError, ModelError
from cai2.models import Conversation, Generation, GenerationParams, OpenAIOptions
from cai2.models._openai import EndpointError, OpenAIChatModel
from cai2.models._stopping import ProgressCallback

T = TypeVar("T")
Balance = Literal["least_in_flight", "round_robin"]


class PoolOptions(OpenAIOptions):
    """Options of an endpoint pool: the ``openai`` options plus balancing and failover.

    ``max_retries`` counts how often one request moves to another endpoint after a failure;
    ``max_concurrency`` is the number of requests in flight across the whole pool.
    """

    balance: Balance = Field(
        "least_in_flight",
        description="`least_in_flight`: the endpoint with fewest open requests; `round_robin`.",
    )
    endpoint_retries: int = Field(
        1, ge=0, le=20, description="Retries on the same endpoint before failing over."
    )
    health_interval: float = Field(
        5.0, gt=0, description="Seconds before an endpoint marked down is probed again."
    )
    health_timeout: float = Field(
        3.0, gt=0, description="Seconds a health check (`GET /models`) may take."
    )


@dataclass
class Endpoint:
    """One server of the pool and what the pool knows about it."""

    url: str
    client: OpenAIChatModel | None = None
    healthy: bool = True
    in_flight: int = 0
    served: int = 0
    failures: int = 0
    next_probe: float = 0.0
    last_error: str | None = None


def load_endpoint_pool(
    target: str, *, progress: ProgressCallback | None = None, **options: Any
) -> EndpointPool:
    """Factory behind ``openai:URL1,URL2,...#model`` (see :func:`cai2.models.load_model`)."""
    settings = validate_with_location(PoolOptions, options)
    urls_part, _, model_name = target.partition("#")
    urls = [url.strip() for url in urls_part.split(",") if url.strip()]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"`openai:{target}`: `{url}` is not an http(s) base URL; a pool spec looks like "
                f"`openai:http://a:8000/v1,http://b:8000/v1#model-name`"
            )
    return EndpointPool(urls, model_name or None, options=settings, progress=progress)


class EndpointPool:
    """Several OpenAI-compatible servers used as one model, with health checks and failover.

    Args:
        urls: Base URLs of the servers (each ending in ``/v1`` for most servers).
        model_name: The served model's name; ``None`` asks the first healthy server.
        options: Pool options.
        progress: Called as ``progress(done, total)`` after each finished request.

    Raises:
        ModelError: if no endpoint answers its health check.
    """

    def __init__(
        self,
        urls: Sequence[str],
        model_name: str | None = None,
        *,
        options: PoolOptions | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        if len(set(urls)) != len(urls) or not urls:
            raise ConfigError(f"an endpoint pool needs distinct base URLs, got {list(urls)}")
        self.options = options or PoolOptions()
        self.progress = progress
        self.endpoints = [Endpoint(url.rstrip("/")) for url in urls]
        self.failovers = 0
        self._lock = threading.Lock()
        self._turn = 0
        self._http = httpx.Client(timeout=self.options.health_timeout)
        served = self.check_health()
        if not any(self.healthy.values()):
            details = "; ".join(f"{e.url}: {e.last_error}" for e in self.endpoints)
            raise ModelError(f"no endpoint of the pool answers `GET /models` ({details})")
        if model_name is None:
            names = next(names for names in served.values() if names is not None)
            if len(names) != 1:
                raise ConfigError(
                    f"the pool's endpoints serve {len(names)} models ({', '.join(names)}); name "
                    f"one after `#` in the spec"
                )
            model_name = names[0]
        self.model_name = model_name
        self.spec = f"openai:{','.join(e.url for e in self.endpoints)}#{model_name}"
        member_options = self.options.model_dump(
            include=set(OpenAIOptions.model_fields) - {"max_retries"}
        )
        for endpoint in self.endpoints:
            endpoint.client = OpenAIChatModel(
                endpoint.url,
                model_name,
                options=OpenAIOptions(**member_options, max_retries=self.options.endpoint_retries),
            )

    @property
    def healthy(self) -> dict[str, bool]:
        """Base URL → whether the pool currently sends requests there."""
        with self._lock:
            return {endpoint.url: endpoint.healthy for endpoint in self.endpoints}

    def stats(self) -> dict[str, dict[str, Any]]:
        """Base URL → ``healthy``, ``served``, ``failures``, ``in_flight``, ``last_error``."""
        with self._lock:
            return {
                e.url: {
                    "healthy": e.healthy,
                    "served": e.served,
                    "failures": e.failures,
                    "in_flight": e.in_flight,
                    "last_error": e.last_error,
                }
                for e in self.endpoints
            }

    def _probe(self, endpoint: Endpoint) -> list[str] | None:
        """``GET /models``: the served model names, or ``None`` if the endpoint is down."""
        try:
            response = self._http.get(f"{endpoint.url}/models")
            response.raise_for_status()
            data = response.json().get("data") or []
            return [str(m.get("id")) for m in data if isinstance(m, dict)]
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            endpoint.last_error = f"health check failed: {type(exc).__name__}: {exc}"
            return None

    def check_health(self) -> dict[str, list[str] | None]:
        """Probe every endpoint now; returns URL → served model names (``None`` when down)."""
        with ThreadPoolExecutor(max_workers=len(self.endpoints)) as pool:
            answers = list(pool.map(self._probe, self.endpoints))
        now = time.monotonic()
        with self._lock:
            for endpoint, names in zip(self.endpoints, answers, strict=True):
                endpoint.healthy = names is not None
                endpoint.next_probe = now + self.options.health_interval
        return {e.url: names for e, names in zip(self.endpoints, answers, strict=True)}

    def _revive_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [e for e in self.endpoints if not e.healthy and e.next_probe <= now]
            for endpoint in due:
                endpoint.next_probe = now + self.options.health_interval
        for endpoint in due:
            if self._probe(endpoint) is not None:
                with self._lock:
                    endpoint.healthy = True
                    endpoint.last_error = None

    def _acquire(self, avoid: set[str]) -> Endpoint:
        self._revive_due()
        with self._lock:
            healthy = [e for e in self.endpoints if e.healthy]
            candidates = [e for e in healthy if e.url not in avoid] or healthy
            if not candidates:
                details = "; ".join(f"{e.url}: {e.last_error}" for e in self.endpoints)
                raise EndpointError(f"every endpoint of the pool is down ({details})")
            if self.options.balance == "round_robin":
                chosen = candidates[self._turn % len(candidates)]
                self._turn += 1
            else:
                chosen = min(candidates, key=lambda e: (e.in_flight, e.served))
            chosen.in_flight += 1
            return chosen

    def _with_failover(self, call: Callable[[OpenAIChatModel], T]) -> T:
        tried: set[str] = set()
        attempt = 0
        while True:
            endpoint = self._acquire(tried)
            assert endpoint.client is not None
            try:
                result = call(endpoint.client)
            except EndpointError as exc:
                with self._lock:
                    endpoint.in_flight -= 1
                    endpoint.failures += 1
                    endpoint.healthy = False
                    endpoint.last_error = str(exc)
                    endpoint.next_probe = time.monotonic() + self.options.health_interval
                tried.add(endpoint.url)
                if attempt >= self.options.max_retries:
                    raise ModelError(
                        f"the pool gave up on a request after {attempt + 1} endpoint failures "
                        f"(last: {exc})"
                    ) from exc
                attempt += 1
                with self._lock:
                    self.failovers += 1
                continue
            except BaseException:
                with self._lock:
                    endpoint.in_flight -= 1
                raise
            with self._lock:
                endpoint.in_flight -= 1
                endpoint.served += 1
            return result

    def _map(self, function: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
        total, done = len(items), 0

        def run(item: Any) -> T:
            nonlocal done
            result = function(item)
            with self._lock:
                done += 1
                finished = done
            if self.progress is not None:
                self.progress(finished, total)
            return result

        with ThreadPoolExecutor(max_workers=self.options.max_concurrency) as pool:
            return list(pool.map(run, items))

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams | None = None
    ) -> list[Generation]:
        """One reply per conversation, spread over the healthy endpoints, in order."""
        params = params or GenerationParams()
        return self._map(
            lambda conversation: self._with_failover(
                lambda client: client._generate_one(conversation, params)
            ),
            list(conversations),
        )

    def logprobs(
        self, conversations: Sequence[Conversation], continuations: Sequence[str]
    ) -> list[float]:
        """Continuation log-probabilities (needs the ``tokenizer`` option), over the pool."""
        if len(conversations) != len(continuations):
            raise ModelError(
                f"logprobs got {len(conversations)} conversations and {len(continuations)} "
                "continuations; pass one continuation per conversation"
            )
        return self._map(
            lambda pair: self._with_failover(lambda client: client._logprob_one(*pair)),
            list(zip(conversations, continuations, strict=True)),
        )

    def close(self) -> None:
        """Close every endpoint's connections."""
        self._http.close()
        for endpoint in self.endpoints:
            if endpoint.client is not None:
                endpoint.client.close()

    def __repr__(self) -> str:
        return f"EndpointPool({self.spec!r})"
