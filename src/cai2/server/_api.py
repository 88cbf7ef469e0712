"""The OpenAI-compatible API: ``/v1/models`` and ``/v1/chat/completions`` (plain and streaming).

Errors use OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so existing clients
raise their usual exceptions. A streamed answer is judged whole before its first byte is sent (an
unjudged token must never reach the client); the stream then carries it in word-sized chunks and
the last chunk carries the ``cai2`` extension field.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from cai2.models import Conversation, GenerationParams, Message
from cai2.oversight import ReviewStatus
from cai2.server._guard import GuardResult


class APIError(Exception):
    """An error returned to API clients in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code

    def response(self) -> JSONResponse:
        """The JSON response of the error."""
        return JSONResponse(
            error_body(self.message, self.kind, self.param, self.code), status_code=self.status
        )


def error_body(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class TextPart(BaseModel):
    """One text part of a message's content list."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message of a request (`developer` is read as `system`)."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def as_message(self) -> Message:
        """The message in cai2's conversation format."""
        text = (
            self.content
            if isinstance(self.content, str)
            else "".join(part.text for part in self.content)
        )
        role: Literal["system", "user", "assistant"] = (
            "system" if self.role == "developer" else self.role
        )
        return Message(role=role, content=text)


class ChatRequest(BaseModel):
    """The subset of OpenAI's chat-completion request the service honours; other keys ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(None, ge=1, le=1)
    stream: bool = False


class RateLimiter:
    """At most ``per_minute`` requests per client in any sliding minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str) -> bool:
        """Count one request of ``client``; False when it is over the limit."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and now - hits[0] >= 60.0:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return False
            hits.append(now)
            return True


def api_client(request: Request) -> str:
    """Authenticate an API call by its bearer key and apply the rate limit; the client's name."""
    state = request.app.state
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    client: str | None = None
    if scheme.lower() == "bearer" and key.strip():
        client = state.db.client_of_key(key.strip())
    if client is None:
        if state.settings.require_api_key:
            raise APIError(
                401,
                "missing or invalid API key; send `Authorization: Bearer <key>` with a key from "
                "`cai2 serve add-key NAME`",
                kind="authentication_error",
                code="invalid_api_key",
            )
        client = f"anonymous@{request.client.host if request.client else 'unknown'}"
    if not state.rate_limiter.allow(client):
        raise APIError(
            429,
            f"rate limit of {state.settings.rate_limit_per_minute} requests per minute exceeded",
            kind="rate_limit_error",
            code="rate_limit_exceeded",
        )
    return client


router = APIRouter()


@router.get("/v1/models")
def list_models(request: Request, client: str = Depends(api_client)) -> dict[str, Any]:
    """The one guarded model."""
    settings = request.app.state.settings
    return {
        "object": "list",
        "data": [
            {
                "id": settings.model_name,
                "object": "model",
                "created": request.app.state.started,
                "owned_by": "cai2",
                "cai2": {"backend": settings.model},
            }
        ],
    }


def _conversation(body: ChatRequest, settings: Any) -> tuple[Conversation, GenerationParams]:
    if len(body.messages) > settings.max_messages:
        raise APIError(
            400, f"at most {settings.max_messages} messages per request", param="messages"
        )
    messages = [m.as_message() for m in body.messages]
    if messages[-1]["role"] != "user":
        raise APIError(400, "the last message must be from the user", param="messages")
    wanted = body.max_completion_tokens or body.max_tokens or settings.max_tokens
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    params = GenerationParams(
        max_tokens=min(wanted, settings.max_tokens),
        temperature=body.temperature or 0.0,
        top_p=body.top_p or 1.0,
        stop=stop,
        seed=body.seed if body.seed is not None else 0,
    )
    return messages, params


def _check_model(body: ChatRequest, settings: Any) -> None:
    if body.model != settings.model_name:
        raise APIError(
            404,
            f"model `{body.model}` does not exist; this server serves `{settings.model_name}`",
            param="model",
            code="model_not_found",
        )


def completion_body(result: GuardResult, model_name: str) -> dict[str, Any]:
    """A ``chat.completion`` object for a guarded result."""
    return {
        "id": result.request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.content},
                "finish_reason": result.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        },
        "cai2": result.extension(),
    }


def _pieces(text: str) -> list[str]:
    """Word-sized pieces that join back to ``text`` exactly."""
    pieces: list[str] = []
    current = ""
    for char in text:
        current += char
        if char == " ":
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


async def _stream(result: GuardResult, model_name: str) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None, extra: dict[str, Any]) -> str:
        body = {
            "id": result.request_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, None, {})
    for piece in _pieces(result.content):
        yield chunk({"content": piece}, None, {})
    yield chunk({}, result.finish_reason, {"cai2": result.extension()})
    yield "data: [DONE]\n\n"


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatRequest, request: Request, client: str = Depends(api_client)
) -> JSONResponse | StreamingResponse:
    """The guarded chat endpoint."""
    state = request.app.state
    _check_model(body, state.settings)
    messages, params = _conversation(body, state.settings)
    result: GuardResult = await run_in_threadpool(
        state.guard.handle, messages, params, client=client, stream=body.stream
    )
    if body.stream:
        return StreamingResponse(
            _stream(result, state.settings.model_name), media_type="text/event-stream"
        )
    return JSONResponse(completion_body(result, state.settings.model_name))


@router.get("/v1/cai2/requests/{request_id}")
def request_status(
    request_id: str, request: Request, client: str = Depends(api_client)
) -> dict[str, Any]:
    """What became of one of the client's requests; how a held answer is collected.

    ``status`` is ``final`` for an answer that was not held (``content`` is what was sent),
    ``held`` while a person has not reviewed it, ``released`` once a person agreed it may go out
    (``content`` is the held answer) and ``withheld`` when a person judged it a violation or
    skipped it (``content`` is the refusal message).
    """
    state = request.app.state
    record = state.db.request(request_id)
    if record is None or record.client != client:  # another client's ids do not exist for you
        raise APIError(404, f"no request `{request_id}` of this API key", code="not_found")
    body: dict[str, Any] = {"id": request_id, "object": "cai2.request", "action": record.action}
    if record.action != "held":
        return {**body, "status": "final", "content": record.response, "reviewed_at": None}
    entry = state.queue.entry_for(state.settings.run_id, request_id)
    if entry is None or entry.status is ReviewStatus.PENDING:
        return {**body, "status": "held", "content": None, "reviewed_at": None}
    reviewed_at = entry.reviewed_at.isoformat() if entry.reviewed_at else None
    if entry.human_violation is False and record.held_response is not None:
        return {
            **body,
            "status": "released",
            "content": record.held_response,
            "reviewed_at": reviewed_at,
        }
    refusal = state.settings.refusal_message
    return {**body, "status": "withheld", "content": refusal, "reviewed_at": reviewed_at}


@router.post("/bare/v1/chat/completions", response_model=None)
async def bare_chat_completions(
    body: ChatRequest, request: Request, client: str = Depends(api_client)
) -> JSONResponse:
    """The backend without guard or record (only with ``bare_endpoint``; for benchmarks)."""
    state = request.app.state
    if not state.settings.bare_endpoint:
        raise APIError(404, "not found", code="not_found")
    messages, params = _conversation(body, state.settings)
    text, _ = await run_in_threadpool(state.guard.bare, messages, params)
    return JSONResponse(
        {
            "id": "bare",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": state.settings.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
    )
