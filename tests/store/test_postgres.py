"""The run index on a real PostgreSQL server started for this module (skipped without one)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cai2.store import RunStore, Status

POSTGRES_USER = "postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; drop to the `postgres` account when we are root.
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without `runuser` to start PostgreSQL")
        return [runuser, "-u", POSTGRES_USER, "--", *command]
    return command


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """URL of a throwaway PostgreSQL cluster on a free loopback port."""
    pytest.importorskip("psycopg")
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    # Not under pytest's tmp dir: that one is private to root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="cai2-postgres-"))
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, POSTGRES_USER)
        shutil.chown(data, POSTGRES_USER)
    port = _free_port()
    subprocess.run(
        _as_server_user(
            [initdb, "-D", str(data), "-U", POSTGRES_USER, "--auth=trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user(
            [pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def test_runs_and_stages_round_trip_through_postgres(postgres_url: str, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs", url=postgres_url)
    try:
        run = store.create_run("pg", {"model": "hf:tiny"}, run_id="pg-1")
        stage = run.stage("generate", config_hash="h1")
        stage.start()
        time.sleep(0.01)
        stage.finish({"responses": 4, "rate": 0.5})
        run.set_status(Status.DONE)
        assert not (tmp_path / "runs" / "index.sqlite").exists()

        reopened = RunStore(tmp_path / "runs", url=postgres_url)
        try:
            (record,) = reopened.list_runs()
            assert (record.id, record.status, record.name) == ("pg-1", Status.DONE, "pg")
            (stage_record,) = record.stages
            assert stage_record.metrics == {"responses": 4, "rate": 0.5}
            assert stage_record.started_at is not None and stage_record.finished_at is not None
            assert stage_record.finished_at > stage_record.started_at
            assert stage_record.started_at.tzinfo is not None
            reopened.delete_run("pg-1")
            assert store.list_runs() == []
        finally:
            reopened.close()
    finally:
        store.close()
