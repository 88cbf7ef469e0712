"""The review web UI: login, queue, decision review, checkpoints, dashboard, constitution versions.

Sessions are random tokens in an HttpOnly, SameSite=Strict cookie (the database keeps their
SHA-256). Every POST carries a CSRF token: the session's for logged-in forms, a double-submit
cookie for the login form. Reviewers review; only admins change the constitution.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cai2.errors import Cai2Error, DataError
from cai2.oversight import ReviewStatus
from cai2.server._db import User
from cai2.server._guard import load_constitution_text
from cai2.server._templates import APP_CSS, APP_JS

SESSION_COOKIE = "cai2_session"
LOGIN_CSRF_COOKIE = "cai2_login_csrf"

router = APIRouter(prefix="/ui")


class UIError(Exception):
    """A UI error page with a status code."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


class LoginRequired(Exception):
    """No valid session: GETs go to the login page, POSTs get 401."""


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Render a page with the current user and CSRF token."""
    env = request.app.state.templates
    session = getattr(request.state, "session", None)
    user, csrf = session if session is not None else (None, "")
    html = env.get_template(template).render(user=user, csrf=csrf, **values)
    return HTMLResponse(html, status_code=status)


def current_user(request: Request, role: str | None = None) -> User:
    """The logged-in user (and stash the session on ``request.state``).

    Raises:
        LoginRequired: without a live session.
        UIError: 403 when ``role`` is `admin` and the user is not one.
    """
    token = request.cookies.get(SESSION_COOKIE)
    session = request.app.state.db.session_user(token) if token else None
    if session is None:
        raise LoginRequired()
    request.state.session = session
    user = session[0]
    if role == "admin" and not user.is_admin:
        raise UIError(403, "Forbidden", "only admins may do this; ask an admin")
    return user


def check_csrf(request: Request, token: str) -> None:
    """Refuse a POST whose CSRF token does not match the session's."""
    _, expected = request.state.session
    if not token or not hmac.compare_digest(token, expected):
        raise UIError(403, "Forbidden", "missing or wrong CSRF token; reload the page and retry")


def _cookie_args(request: Request) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": request.app.state.settings.secure_cookies,
        "path": "/",
    }


@router.get("/static/app.js")
def app_js() -> Response:
    """Keyboard shortcuts."""
    return Response(APP_JS, media_type="text/javascript")


@router.get("/static/app.css")
def app_css() -> Response:
    """Styles."""
    return Response(APP_CSS, media_type="text/css")


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    """The login form (sets the double-submit CSRF cookie)."""
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", title="Login", login_csrf=token)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, **_cookie_args(request))
    return response


@router.post("/login", response_model=None)
def login(
    request: Request,
    username: str = Form(..., max_length=128),
    password: str = Form(..., max_length=1024),
    csrf: str = Form(""),
) -> Response:
    """Check the password and start a session."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not csrf or not cookie or not hmac.compare_digest(csrf, cookie):
        raise UIError(403, "Forbidden", "missing or wrong CSRF token; reload the login page")
    state = request.app.state
    user = state.db.authenticate(username, password)
    if user is None:
        token = secrets.token_urlsafe(24)
        failed = render(
            request,
            "login.html",
            status=401,
            title="Login",
            login_csrf=token,
            message="wrong username or password",
            message_kind="error",
        )
        failed.set_cookie(LOGIN_CSRF_COOKIE, token, **_cookie_args(request))
        return failed
    token, _ = state.db.open_session(user, state.settings.session_hours)
    response = RedirectResponse("/ui/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(state.settings.session_hours * 3600),
        **_cookie_args(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> RedirectResponse:
    """End the session."""
    current_user(request)
    check_csrf(request, csrf)
    request.app.state.db.close_session(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def queue_page(request: Request) -> HTMLResponse:
    """Pending decisions and the checkpoint state."""
    current_user(request)
    state = request.app.state
    run_id = state.settings.run_id
    queue = state.queue
    last = queue.last_checkpoint(run_id)
    since = state.db.auto_decisions_since(last.created_at if last is not None else None)
    return render(
        request,
        "queue.html",
        title="Queue",
        run_id=run_id,
        entries=queue.entries(run_id),
        checkpoint=queue.waiting_checkpoint(run_id),
        since=since,
        k=state.guard.hierarchy.config.human.checkpoint_every,
    )


@router.get("/history")
def history_page(request: Request) -> HTMLResponse:
    """Reviewed decisions, newest first."""
    current_user(request)
    state = request.app.state
    entries = state.queue.entries(
        state.settings.run_id,
        statuses=(ReviewStatus.APPROVED, ReviewStatus.OVERRIDDEN, ReviewStatus.SKIPPED),
    )
    return render(request, "history.html", title="History", entries=list(reversed(entries)))


def _entry(request: Request, entry_id: int) -> tuple[Any, list[Any]]:
    state = request.app.state
    every = state.queue.entries(state.settings.run_id, statuses=tuple(ReviewStatus))
    for entry in every:
        if entry.id == entry_id:
            return entry, every
    raise UIError(404, "Not found", f"no review-queue entry {entry_id}")


@router.get("/review/{entry_id}")
def review_page(request: Request, entry_id: int) -> HTMLResponse:
    """One decision: conversation and verdict chain side by side, with the review forms."""
    current_user(request)
    entry, every = _entry(request, entry_id)
    pending = [e.id for e in every if e.status is ReviewStatus.PENDING]
    later = [i for i in pending if i > entry_id]
    earlier = [i for i in pending if i < entry_id]
    record = request.app.state.db.request(entry.item_id)
    return render(
        request,
        "review.html",
        title=f"Decision {entry_id}",
        entry=entry,
        record=record,
        next_id=later[0] if later else None,
        previous_id=earlier[-1] if earlier else None,
    )


@router.post("/review/{entry_id}")
def review_action(
    request: Request,
    entry_id: int,
    decision: str = Form(...),
    csrf: str = Form(""),
    reason: str = Form("", max_length=4000),
    violation: str = Form(""),
) -> RedirectResponse:
    """Approve, override (with a reason) or skip a decision."""
    user = current_user(request)
    check_csrf(request, csrf)
    state = request.app.state
    queue = state.queue
    try:
        if decision == "approve":
            queue.approve(entry_id, user.username, reason)
        elif decision == "override":
            chosen = {"yes": True, "no": False}.get(violation)
            queue.override(entry_id, user.username, reason, chosen)
        elif decision == "skip":
            queue.skip(entry_id, user.username, reason)
        else:
            raise DataError(f"unknown decision `{decision}`; use approve, override or skip")
    except DataError as exc:
        raise UIError(400, "Cannot do that", str(exc)) from exc
    # Spot-checks changed: a bound over its limit opens a checkpoint (shown on the queue page).
    state.guard.check_bound()
    pending = [e.id for e in queue.entries(state.settings.run_id)]
    later = [i for i in pending if i > entry_id] or pending
    return RedirectResponse(f"/ui/review/{later[0]}" if later else "/ui/", status_code=303)


@router.post("/checkpoint/clear")
def clear_checkpoint(
    request: Request, csrf: str = Form(""), note: str = Form("", max_length=2000)
) -> RedirectResponse:
    """A person lets auto-approval resume (every queued decision must be reviewed first)."""
    user = current_user(request)
    check_csrf(request, csrf)
    try:
        request.app.state.queue.clear_checkpoint(
            request.app.state.settings.run_id, user.username, note
        )
    except DataError as exc:
        raise UIError(409, "Checkpoint not cleared", str(exc)) from exc
    return RedirectResponse("/ui/", status_code=303)


@router.get("/dashboard")
def dashboard_page(request: Request) -> HTMLResponse:
    """Headline numbers and the plot over time."""
    from cai2.server._dashboard import totals

    current_user(request)
    state = request.app.state
    reviewed = state.queue.entries(state.settings.run_id, statuses=tuple(ReviewStatus))
    return render(
        request,
        "dashboard.html",
        title="Dashboard",
        totals=totals(state.db.requests(), reviewed),
    )


@router.get("/dashboard.svg")
def dashboard_svg(request: Request) -> Response:
    """The plot over time."""
    from cai2.server._dashboard import plot_svg

    current_user(request)
    state = request.app.state
    reviewed = state.queue.entries(state.settings.run_id, statuses=tuple(ReviewStatus))
    svg = plot_svg(state.db.requests(limit=20_000), reviewed)
    return Response(svg, media_type="image/svg+xml")


@router.get("/constitution")
def constitution_page(request: Request) -> HTMLResponse:
    """Versions of the constitution and the form for a new one (admins only)."""
    current_user(request, role="admin")
    versions = request.app.state.db.constitution_versions()
    return render(
        request,
        "constitution.html",
        title="Constitution",
        versions=versions,
        draft=versions[0].yaml_text,
    )


@router.post("/constitution")
def save_constitution(
    request: Request,
    csrf: str = Form(""),
    yaml_text: str = Form(..., max_length=200_000),
    note: str = Form(..., min_length=1, max_length=2000),
) -> Response:
    """Validate and store a new version (admins only); it is in force for the next request."""
    user = current_user(request, role="admin")
    check_csrf(request, csrf)
    state = request.app.state
    try:
        constitution = load_constitution_text(
            yaml_text, state.guard.scratch_path("constitution-draft.yaml")
        )
    except Cai2Error as exc:
        versions = state.db.constitution_versions()
        return render(
            request,
            "constitution.html",
            status=400,
            title="Constitution",
            versions=versions,
            draft=yaml_text,
            message=f"not saved: {exc}",
            message_kind="error",
        )
    state.db.add_constitution_version(constitution.name, yaml_text, user.username, note)
    return RedirectResponse("/ui/constitution", status_code=303)
