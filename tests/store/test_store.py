"""The run store against a real SQLite file: directories, index rows, statuses, metrics."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC
from pathlib import Path

import pytest
import yaml

from cai2.errors import StoreError
from cai2.store import RunNotFoundError, RunStore, Status, config_hash


def test_create_run_writes_directory_and_index_row(store: RunStore, runs_dir: Path) -> None:
    config = {"model": "hf:tiny", "stages": [{"stage": "generate", "config": {"limit": 3}}]}
    run = store.create_run("smoke", config, run_id="smoke-1")

    assert run.dir == runs_dir.resolve() / "smoke-1"
    assert yaml.safe_load((run.dir / "config.yaml").read_text()) == config
    assert json.loads((run.dir / "metrics.json").read_text()) == {"run": {}, "stages": {}}
    assert "created run `smoke-1` (smoke)" in run.log_path.read_text()

    with sqlite3.connect(runs_dir / "index.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = db.execute("SELECT id, name, status, config_hash FROM cai2_runs").fetchall()
    assert rows == [("smoke-1", "smoke", "pending", config_hash(config))]


def test_index_survives_reopening_and_lists_newest_first(runs_dir: Path) -> None:
    first = RunStore(runs_dir)
    first.create_run("a", {"x": 1}, run_id="run-a")
    first.create_run("b", {"x": 2}, run_id="run-b")
    first.close()

    reopened = RunStore(runs_dir)
    try:
        assert [r.id for r in reopened.list_runs()] == ["run-b", "run-a"]
        run = reopened.get_run("run-a")
        assert run.config == {"x": 1}
        assert run.status is Status.PENDING
    finally:
        reopened.close()


def test_a_moved_runs_folder_finds_its_runs_in_the_new_place(tmp_path: Path) -> None:
    old_root, new_root = tmp_path / "old", tmp_path / "new"
    first = RunStore(old_root)
    first.create_run("a", {"x": 1}, run_id="run-a")
    first.close()
    old_root.rename(new_root)
    moved = RunStore(new_root)
    try:
        run = moved.get_run("run-a")
        assert run.dir == new_root.resolve() / "run-a"
        assert run.metrics() == {"run": {}, "stages": {}}
        # `cai2 runs list/show` print the folder the run is in now, not the recorded one.
        assert [r.directory for r in moved.list_runs()] == [run.dir]
        assert run.record.directory == run.dir
        moved.delete_run("run-a")
        assert not (new_root / "run-a").exists()
    finally:
        moved.close()


def test_generated_run_ids_are_unique_and_safe(store: RunStore) -> None:
    one = store.create_run("my recipe/v2", {})
    two = store.create_run("my recipe/v2", {})
    assert one.id != two.id
    assert one.id.startswith("my-recipe-v2-")
    assert one.dir.parent == store.root


def test_unknown_run_is_a_user_error(store: RunStore) -> None:
    assert store.find_run("nope") is None
    with pytest.raises(RunNotFoundError, match="no run `nope`") as info:
        store.get_run("nope")
    assert info.value.exit_code == 2


def test_duplicate_and_invalid_ids_are_refused(store: RunStore) -> None:
    store.create_run("a", {}, run_id="same")
    with pytest.raises(StoreError, match="already exists"):
        store.create_run("a", {}, run_id="same")
    for bad in ("../escape", "", "a/b", ".hidden"):
        with pytest.raises(StoreError, match="invalid run id"):
            store.create_run("a", {}, run_id=bad)
    (store.root / "orphan").mkdir()
    (store.root / "orphan" / "file.txt").write_text("x")
    with pytest.raises(StoreError, match="not in the run index"):
        store.create_run("a", {}, run_id="orphan")


def test_stage_status_transitions_and_metrics(store: RunStore) -> None:
    run = store.create_run("r", {}, run_id="r1")
    generate = run.stage("generate", config_hash="abc")
    judge = run.stage("judge", kind="verdicts")
    assert [(s.name, s.kind, s.position, s.status) for s in run.stages()] == [
        ("generate", "generate", 0, Status.PENDING),
        ("judge", "verdicts", 1, Status.PENDING),
    ]

    generate.start()
    started = generate.record.started_at
    assert generate.status is Status.RUNNING
    assert started is not None and started.tzinfo == UTC
    generate.finish({"responses": 3, "seconds": 1.5})
    record = generate.record
    assert record.status is Status.DONE
    assert record.finished_at is not None and record.finished_at >= started
    assert record.metrics == {"responses": 3, "seconds": 1.5}
    assert record.config_hash == "abc"

    judge.start()
    judge.fail("ModelError: out of memory")
    assert judge.record.status is Status.FAILED
    assert judge.record.error == "ModelError: out of memory"
    judge.start()  # a resume clears the error and keeps the first start time
    assert judge.record.error is None

    run.log_metrics({"harm_rate": 0.25})
    assert run.metrics() == {
        "run": {"harm_rate": 0.25},
        "stages": {"generate": {"responses": 3, "seconds": 1.5}},
    }
    assert run.record.metrics == {"harm_rate": 0.25}
    run.set_status(Status.FAILED, "stage `judge`: out of memory")
    assert run.record.error == "stage `judge`: out of memory"
    log = run.log_path.read_text()
    assert "stage `generate` done" in log and "stage `judge` failed" in log


def test_artifacts_live_in_stage_folders_and_cannot_escape(store: RunStore) -> None:
    run = store.create_run("r", {}, run_id="r1")
    stage = run.stage("generate")
    stage.append_jsonl("responses.jsonl", {"id": "p1", "response": "hello"})
    stage.write_json("inputs.json", {"count": 1})
    assert run.read_jsonl("generate/responses.jsonl") == [{"id": "p1", "response": "hello"}]
    assert stage.read_json("inputs.json") == {"count": 1}
    assert run.artifact_paths() == [
        run.dir / "artifacts" / "generate" / "inputs.json",
        run.dir / "artifacts" / "generate" / "responses.jsonl",
    ]
    with pytest.raises(StoreError, match="outside run"):
        run.write_json("../../elsewhere.json", {})


def test_config_hash_ignores_key_order_but_not_values() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert len(config_hash({})) == 64


def test_set_config_updates_file_and_hash(store: RunStore) -> None:
    run = store.create_run("r", {"a": 1}, run_id="r1")
    run.set_config({"a": 2})
    assert run.config == {"a": 2}
    assert run.record.config_hash == config_hash({"a": 2})


def test_delete_run_removes_rows_and_directory(store: RunStore) -> None:
    run = store.create_run("r", {}, run_id="gone")
    run.stage("generate").start()
    store.delete_run("gone")
    assert store.find_run("gone") is None
    assert not run.dir.exists()
    with sqlite3.connect(store.root / "index.sqlite") as db:
        assert db.execute("SELECT count(*) FROM cai2_stages").fetchone()[0] == 0


def test_root_from_environment_and_explicit_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAI2_RUNS_DIR", str(tmp_path / "from-env"))
    default = RunStore()
    assert default.root == (tmp_path / "from-env").resolve()
    default.close()
    index_file = tmp_path / "elsewhere" / "catalogue.db"
    index_file.parent.mkdir()
    custom = RunStore(tmp_path / "runs", url=f"sqlite:///{index_file}")
    try:
        custom.create_run("r", {}, run_id="r1")
        assert index_file.exists()
        assert not (tmp_path / "runs" / "index.sqlite").exists()
    finally:
        custom.close()


def test_bad_index_url_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the run index"):
        RunStore(tmp_path, url="nosuchdialect://x")


def test_export_parquet_matches_jsonl(store: RunStore) -> None:
    parquet = pytest.importorskip("pyarrow.parquet")
    run = store.create_run("r", {}, run_id="r1")
    stage = run.stage("generate")
    rows = [
        {"id": "a", "tokens": 3, "params": {"max_tokens": 8}},
        {"id": "b", "tokens": 5, "params": {"max_tokens": 8}},
    ]
    for row in rows:
        stage.append_jsonl("responses.jsonl", row)
    target = run.export_parquet("generate/responses.jsonl")
    assert target == run.dir / "artifacts" / "generate" / "responses.parquet"
    assert parquet.read_table(target).to_pylist() == rows
