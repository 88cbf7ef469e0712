"""`cai2 runs list` / `cai2 runs show` on a real store."""

from __future__ import annotations

import pytest

from cai2.cli import main
from cai2.store import RunStore, Status


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


def test_list_shows_runs_with_status_and_stage_counts(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    run = store.create_run("alpha", {"model": "hf:tiny"}, run_id="alpha-1")
    run.stage("generate").finish({"responses": 2})
    run.stage("judge")
    run.set_status(Status.RUNNING)
    store.create_run("beta", {}, run_id="beta-1")

    assert main(["runs", "list", "--runs-dir", str(store.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    alpha = next(line for line in lines if "alpha-1" in line)
    beta = next(line for line in lines if "beta-1" in line)
    assert "running" in alpha and "1/2" in alpha
    assert "pending" in beta and "0/0" in beta
    assert lines.index(beta) < lines.index(alpha)  # newest first


def test_list_on_empty_store(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "list", "--runs-dir", str(store.root)]) == 0
    assert "no runs" in capsys.readouterr().out


def test_show_prints_config_stages_metrics_and_artifacts(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    run = store.create_run("alpha", {"model": "hf:tiny", "limit": 7}, run_id="alpha-1")
    stage = run.stage("generate")
    stage.start()
    stage.append_jsonl("responses.jsonl", {"id": "a"})
    stage.append_jsonl("responses.jsonl", {"id": "b"})
    stage.finish({"responses": 2})
    failed = run.stage("judge")
    failed.start()
    failed.fail("interrupted; rerun to resume")

    assert main(["runs", "show", "alpha-1", "--runs-dir", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "model: hf:tiny" in out and "limit: 7" in out
    generate_line = next(line for line in out.splitlines() if "│ generate" in line)
    assert "done" in generate_line and "responses=2" in generate_line
    assert "failed (interrupted; rerun to resume)" in out
    artifact_line = next(line for line in out.splitlines() if "responses.jsonl" in line)
    assert str(run.dir / "artifacts" / "generate" / "responses.jsonl") in artifact_line
    assert artifact_line.rstrip(" │").endswith("2")  # record count
    assert str(run.log_path) in out


def test_show_unknown_run_exits_2_with_one_line(
    store: RunStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "show", "missing", "--runs-dir", str(store.root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "no run `missing`" in err and "cai2 runs list" in err
