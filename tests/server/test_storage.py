"""Storage: Alembic migrations, SQLite WAL, and no lost records when `cai2 serve` is killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, inspect, text

from cai2.cli import main
from cai2.oversight import ReviewQueue
from cai2.oversight._queue import OversightBase
from cai2.server import ServiceDB
from cai2.server._db import VERSION_TABLE, ServeBase, owns_table


def _head() -> str:
    from alembic.config import Config

    import cai2.server._db as db_module

    config = Config()
    folder = Path(db_module.__file__).parent / "migrations"
    config.set_main_option("script_location", str(folder))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _all_tables() -> MetaData:
    """The service's and the review queue's tables in one MetaData (what the migrations build)."""
    combined = MetaData()
    for table in [*ServeBase.metadata.tables.values(), *OversightBase.metadata.tables.values()]:
        table.to_metadata(combined)
    return combined


def test_migrations_build_the_models_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.sqlite'}"
    db = ServiceDB(url)
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "include_name": owns_table}
        )
        assert context.get_current_revision() == _head()
        assert compare_metadata(context, _all_tables()) == []
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    db.create_api_key("a")
    db.close()
    again = ServiceDB(url)  # upgrading an up-to-date database changes nothing
    assert again.client_of_key("nope") is None
    assert {"cai2_serve_requests", "cai2_serve_users"} <= set(
        inspect(again.engine).get_table_names()
    )
    again.close()


def test_upgrade_from_0001_keeps_rows_and_adopts_queue_tables(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    import cai2.server._db as db_module

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(Path(db_module.__file__).parent / "migrations"))
    with engine.begin() as connection:  # a database as revision 0001 left it
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    engine.dispose()
    ReviewQueue(url).close()  # an older server: the queue tables came from create_all
    with create_engine(url).begin() as connection:
        connection.execute(
            text(
                "insert into cai2_oversight_audit (run_id, item_id, event, actor, payload, "
                "created_at) values ('serve', 'x', 'decision', 'hierarchy', '{}', "
                "'2026-11-01 00:00:00.000000')"
            )
        )
    db = ServiceDB(url)
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE, "include_name": owns_table}
        )
        assert context.get_current_revision() == _head()
        assert compare_metadata(context, _all_tables()) == []
        audit = connection.execute(text("select actor from cai2_oversight_audit")).scalars()
        assert list(audit) == ["hierarchy"]
    columns = {c["name"] for c in inspect(db.engine).get_columns("cai2_serve_requests")}
    assert "held_response" in columns
    db.close()


def test_postgresql_by_url(tiny_model: Any, oversight: Any, postgres_url: str) -> None:
    url = postgres_url
    from fastapi.testclient import TestClient

    from cai2.server import ServeSettings, create_app

    run_id = f"pg{time.time_ns()}"
    settings = ServeSettings(
        model="hf:tiny",
        assessor="rules",
        database_url=url,
        run_id=run_id,
        oversight=oversight(random_share=1.0),
        max_tokens=8,
    )
    app = create_app(settings, model=tiny_model)
    key = app.state.db.create_api_key(run_id)
    with TestClient(app) as client:
        body = {"model": "cai2-guarded", "messages": [{"role": "user", "content": "hello"}]}
        response = client.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 200, response.text
    request_id = response.json()["id"]
    assert app.state.db.request(request_id) is not None
    entries = app.state.queue.entries(run_id)
    assert [e.item_id for e in entries] == [request_id]
    app.state.queue.approve(entries[0].id, "rex")
    engine = create_engine(url)
    with engine.connect() as connection:
        version = connection.execute(text(f"select version_num from {VERSION_TABLE}")).scalar()
    engine.dispose()
    assert version == _head()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_killed_server_loses_no_answered_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    config = tmp_path / "serve.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": "hf:tiny",
                "assessor": "rules",
                "max_tokens": 24,
                "state_dir": str(state),
                "oversight": {"levels": [{"name": "triage", "judge": "refusal"}]},
            }
        )
    )
    # Access is managed with the CLI in-process (its imports are already loaded here).
    assert main(["serve", "add-key", "loadtest", "--config", str(config)]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("cai2-")
    assert main(["serve", "add-key", "loadtest", "--config", str(config)]) == 2  # name taken
    cai2 = [sys.executable, "-m", "cai2.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    port = _free_port()
    server = subprocess.Popen(
        [*cai2, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)

        answered: list[str] = []
        lock = threading.Lock()

        def ask(i: int) -> None:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    headers={"Authorization": f"Bearer {key}"},
                    json={
                        "model": "cai2-guarded",
                        "messages": [{"role": "user", "content": f"Tell me about bees {i}"}],
                    },
                    timeout=60,
                )
            except httpx.TransportError:
                return  # killed mid-request: no answer, so nothing was promised
            if response.status_code == 200:
                with lock:
                    answered.append(response.json()["id"])

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        while not answered and time.monotonic() < deadline:
            time.sleep(0.01)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        for thread in threads:
            thread.join(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)

    assert answered, "no request was answered before the kill"
    assert len(answered) < 12, "every request finished before the kill; nothing was in flight"
    engine = create_engine(f"sqlite:///{state / 'serve.sqlite'}")
    with engine.connect() as connection:
        stored = [
            r[0] for r in connection.execute(text("select request_id from cai2_serve_requests"))
        ]
        decisions = [
            r[0] for r in connection.execute(text("select item_id from cai2_oversight_decisions"))
        ]
    engine.dispose()
    assert set(answered) <= set(stored)
    assert len(stored) == len(set(stored)) and sorted(decisions) == sorted(stored)
