"""Fixtures for the service tests: the tiny model behind a real uvicorn server on loopback.

Each server gets its own SQLite file in ``tmp_path``; the judge hierarchy is the real refusal
detector, and the context comes from the real explicit rules (``assessor="rules"``) so a server
starts in about a second. One test in ``test_api.py`` runs the default MiniLM assessor.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from cai2.models import ChatModel, load_model
from cai2.oversight import HumanLevelConfig, LevelConfig, OversightConfig, SamplingPolicy
from cai2.server import ServeSettings, ServiceDB, create_app

ADMIN = ("ada", "admin-password-1")
REVIEWER = ("rex", "reviewer-password-1")


@pytest.fixture(scope="session")
def tiny_model() -> ChatModel:
    """The tiny random-weight model with the real SmolLM2 tokenizer."""
    return load_model("hf:tiny", batch_size=4)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_oversight(checkpoint_every: int = 1000, random_share: float = 0.0) -> OversightConfig:
    """One AI level (the refusal detector) and people; no random spot-checks by default."""
    return OversightConfig(
        levels=[LevelConfig(name="triage", judge="refusal", escalation_band=(0.3, 0.7))],
        human=HumanLevelConfig(
            sampling=SamplingPolicy(uncertainty_band=(0.4, 0.6), random_share=random_share),
            checkpoint_every=checkpoint_every,
        ),
    )


@pytest.fixture
def oversight() -> Callable[..., OversightConfig]:
    """Build the test hierarchy: ``oversight(checkpoint_every=K, random_share=s)``."""
    return make_oversight


@dataclass
class Served:
    """A running service: its URL, settings, app and a ready API key."""

    url: str
    settings: ServeSettings
    app: Any
    key: str

    @property
    def api(self) -> str:
        """Base URL of the OpenAI-compatible API."""
        return f"{self.url}/v1"

    @property
    def db(self) -> ServiceDB:
        """The service's tables."""
        db: ServiceDB = self.app.state.db
        return db


@pytest.fixture
def serve(tmp_path: Path, tiny_model: ChatModel) -> Iterator[Callable[..., Served]]:
    """Start services on loopback ports: ``serve(**settings)``; all stop after the test."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**overrides: Any) -> Served:
        values: dict[str, Any] = {
            "model": "hf:tiny",
            "assessor": "rules",
            "oversight": make_oversight(),
            "state_dir": tmp_path / f"state{len(servers)}",
            "max_tokens": 16,
        }
        values.update(overrides)
        settings = ServeSettings(**values)
        app = create_app(settings, model=tiny_model)
        key = app.state.db.create_api_key("tests")
        app.state.db.create_user(*ADMIN, role="admin")
        app.state.db.create_user(*REVIEWER, role="reviewer")
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        servers.append((server, thread))
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/healthz").json()["ok"] is True
        return Served(url, settings, app, key)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def _login(client: httpx.Client, username: str, password: str) -> str:
    page = client.get("/ui/login")
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    response = client.post(
        "/ui/login", data={"username": username, "password": password, "csrf": token}
    )
    assert response.status_code == 303, response.text
    queue = client.get("/ui/")
    assert queue.status_code == 200
    return queue.text.split('name="csrf" value="')[1].split('"')[0]


@pytest.fixture
def login() -> Callable[[httpx.Client, str, str], str]:
    """Log an httpx client in through the form: ``login(client, user, password)`` → CSRF token."""
    return _login
