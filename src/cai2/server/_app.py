"""The FastAPI application: guarded API, review UI, limits and error shapes."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cai2.errors import Cai2Error
from cai2.models import ChatModel, load_model
from cai2.oversight import OversightHierarchy, ReviewQueue
from cai2.server._api import APIError, RateLimiter, error_body
from cai2.server._api import router as api_router
from cai2.server._db import ServiceDB
from cai2.server._guard import Guard
from cai2.server._settings import ServeSettings
from cai2.server._templates import environment
from cai2.server._ui import LoginRequired, UIError
from cai2.server._ui import router as ui_router

_UI_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class BodySizeLimit:
    """Refuse request bodies over ``limit`` bytes with 413, whether or not they declare a length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            error_body(
                f"request body larger than {self.limit} bytes; send a shorter conversation",
                "invalid_request_error",
                code="request_too_large",
            ),
            status_code=413,
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": response.body})


class _TooLarge(Exception):
    pass


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON: " + str(first.get("msg", "")), None
    where = ".".join(location)
    if not where and first.get("type") in {"model_attributes_type", "dict_type"}:
        return (
            "request body must be a JSON object with `model` and `messages` "
            "(send Content-Type: application/json)",
            None,
        )
    message = str(first.get("msg", "invalid value"))
    return (f"`{where}`: {message}" if where else message), (where or None)


def create_app(
    settings: ServeSettings,
    *,
    model: ChatModel | None = None,
    assessor: Any = None,
    hierarchy: OversightHierarchy | None = None,
) -> FastAPI:
    """Build the service.

    Args:
        settings: Service settings (backend, constitution, database, limits).
        model: The backend; loaded from ``settings.model`` when omitted.
        assessor: Context assessor; from ``settings.assessor`` when omitted.
        hierarchy: Judge hierarchy; from ``settings.oversight`` (or the default) when omitted.

    Raises:
        ConfigError, ModelError, StoreError: when a part cannot be built.
    """
    if settings.database_url is None:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    url = settings.url()
    db = ServiceDB(url)
    queue = ReviewQueue(url)
    backend = model if model is not None else load_model(settings.model)
    guard = Guard(settings, backend, db, queue, assessor=assessor, hierarchy=hierarchy)

    app = FastAPI(title="cai2 oversight service", docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.db = db
    app.state.queue = queue
    app.state.guard = guard
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.templates = environment()
    app.state.started = int(time.time())
    app.include_router(api_router)
    app.include_router(ui_router)
    app.add_middleware(BodySizeLimit, limit=settings.max_request_bytes)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path.startswith("/ui"):
            response.headers["Content-Security-Policy"] = _UI_CSP
            response.headers["X-Frame-Options"] = "DENY"
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(APIError)
    async def on_api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        message, param = _validation_message(exc)
        if request.url.path.startswith("/ui"):
            return HTMLResponse(
                app.state.templates.get_template("error.html").render(
                    title="Bad request", detail=message, user=None, csrf=""
                ),
                status_code=400,
            )
        return JSONResponse(error_body(message, "invalid_request_error", param), status_code=400)

    @app.exception_handler(Cai2Error)
    async def on_cai2_error(request: Request, exc: Cai2Error) -> JSONResponse:
        status = 400 if exc.exit_code == 2 else 500
        kind = "invalid_request_error" if status == 400 else "server_error"
        return JSONResponse(error_body(str(exc), kind), status_code=status)

    @app.exception_handler(LoginRequired)
    async def on_login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method == "GET":
            return RedirectResponse("/ui/login", status_code=303)
        return HTMLResponse("login required", status_code=401)

    @app.exception_handler(UIError)
    async def on_ui_error(request: Request, exc: UIError) -> HTMLResponse:
        session = getattr(request.state, "session", None)
        user, csrf = session if session is not None else (None, "")
        html = app.state.templates.get_template("error.html").render(
            title=exc.title, detail=exc.detail, user=user, csrf=csrf
        )
        return HTMLResponse(html, status_code=exc.status)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, Any]:
        return {"ok": True, "records": db.request_count()}

    @app.on_event("shutdown")
    def close() -> None:
        queue.close()
        db.close()

    return app
