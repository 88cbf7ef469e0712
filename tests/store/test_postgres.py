"""The run index on a real PostgreSQL server (the `postgres_url` fixture of tests/conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path

from cai2.store import RunStore, Status


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
