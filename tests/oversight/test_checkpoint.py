"""Mandatory checkpoints: a real stop, a real review through `cai2 review`, and a resume."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from cai2.cli import main
from cai2.errors import DataError
from cai2.oversight import (
    CHECKPOINT_EXIT_CODE,
    CheckpointRequired,
    HumanLevelConfig,
    LevelConfig,
    OversightConfig,
    OversightHierarchy,
    OversightRun,
    ReviewQueue,
    ReviewStatus,
    SamplingPolicy,
)
from cai2.store import RunStore

from .conftest import make_items


def _stop(session: OversightRun, items: list) -> CheckpointRequired:  # type: ignore[type-arg]
    with pytest.raises(CheckpointRequired) as caught:
        session.process(items)
    return caught.value


def test_checkpoint_stops_waits_for_review_and_resumes_without_losing_work(
    config: OversightConfig,
    store: RunStore,
    queue: ReviewQueue,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = store.create_run("oversee", {"test": True})
    items = make_items(15)
    session = OversightRun(OversightHierarchy(config), queue, run.id, batch_size=4)

    # K = 6: the run stops after exactly 6 decisions (batches of 4 + 2), with its work saved.
    stop = _stop(session, items)
    assert queue.decision_count(run.id) == 6
    assert stop.run_id == run.id and "K = 6" in stop.reason
    assert stop.exit_code == CHECKPOINT_EXIT_CODE
    pending = queue.entries(run.id)
    assert len(pending) == stop.pending >= 2
    assert f"cai2 review --run {run.id}" in str(stop)
    first_six = queue.decisions(run.id)

    # Running again without a review does no work and stops again.
    _stop(session, items)
    assert queue.decision_count(run.id) == 6
    with pytest.raises(DataError, match="awaiting review"):
        queue.clear_checkpoint(run.id, "alice")

    # A person works through the queue in the terminal: approve, override with a reason, skip
    # the rest, then lets the run resume.
    answers = ["a", "o", "the reply gives instructions", *["s"] * (len(pending) - 2), "y"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(answers) + "\n"))
    args = ["review", "--run", run.id, "--runs-dir", str(store.root), "--reviewer", "alice"]
    assert main(args) == 0
    shown = capsys.readouterr().out
    assert "verdict chain" in shown and "checkpoint cleared" in shown
    reviewed = queue.entries(run.id, list(ReviewStatus))
    assert [e.status for e in reviewed] == [
        ReviewStatus.APPROVED,
        ReviewStatus.OVERRIDDEN,
        *[ReviewStatus.SKIPPED] * (len(pending) - 2),
    ]
    assert {e.reviewer for e in reviewed} == {"alice"}
    overridden = reviewed[1]
    assert overridden.reason == "the reply gives instructions"
    assert overridden.human_violation is (not overridden.ai_violation)
    assert queue.waiting_checkpoint(run.id) is None

    # Resume: the next six items are decided, the first six are untouched, and it stops again.
    stop = _stop(session, items)
    assert queue.decision_count(run.id) == 12
    assert [d.chain for d in queue.decisions(run.id)[:6]] == [d.chain for d in first_six]
    assert main([*args, "--approve-all"]) == 0
    decisions = session.process(items)
    assert [d.item_id for d in decisions] == [item.id for item in items]

    # Every item was decided exactly once; the audit log holds each chain and every review.
    log = queue.audit_log(run.id)
    decided = [event.item_id for event in log if event.event == "decision"]
    assert sorted(decided) == sorted(item.id for item in items)
    assert all(event.payload["chain"] for event in log if event.event == "decision")
    events = [event.event for event in log]
    assert events.count("checkpoint") == 2 and events.count("checkpoint-cleared") == 2
    by_id = {d.item_id: d for d in decisions}
    assert by_id[overridden.item_id].final_violation is overridden.human_violation
    assert by_id[overridden.item_id].human_status == "overridden"
    item_log = queue.audit_log(run.id, overridden.item_id)
    assert [e.event for e in item_log] == ["decision", "overridden"]
    assert item_log[1].actor == "alice"

    # Runs and their oversight live in one SQLite file.
    with sqlite3.connect(store.root / "index.sqlite") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    assert {"cai2_runs", "cai2_review_queue", "cai2_oversight_audit"} <= tables


def _refusal_config(**human: object) -> OversightConfig:
    return OversightConfig(
        levels=[
            LevelConfig(name="a", judge="refusal"),
            LevelConfig(name="b", judge="refusal", sampling=SamplingPolicy(random_share=0.0)),
        ],
        human=HumanLevelConfig(**human),  # type: ignore[arg-type]
    )


def test_a_bound_over_its_threshold_stops_the_run(queue: ReviewQueue) -> None:
    config = _refusal_config(
        checkpoint_every=1000,
        sampling=SamplingPolicy(random_share=0.2, uncertainty_band=(0.0, 0.0)),
        min_spot_checks=3,
        max_undetected_error=0.3,
    )
    items = make_items(40)
    session = OversightRun(OversightHierarchy(config), queue, "bound-run", batch_size=20)
    session.process(items[:20])
    queued = queue.entries("bound-run")
    spot = [entry for entry in queued if entry.reasons == ["random"]]
    assert len(spot) >= 3
    for entry in queued:  # people disagree with every random spot-check; skip escalations
        if entry in spot:
            queue.override(
                entry.id, "bob", "wrong", None if entry.ai_violation is not None else True
            )
        else:
            queue.skip(entry.id, "bob")
    bound = session.undetected_error_bound()
    assert bound is not None and bound.estimate == 1.0 and bound.upper > 0.3

    stop = _stop(session, items)
    assert stop.reason.startswith("bound") and stop.pending == 0
    assert queue.decision_count("bound-run") == 20  # nothing decided past the stop
    queue.clear_checkpoint("bound-run", "bob", "judges retrained")
    # A person saw this evidence, so the same bound does not stop the run again.
    assert len(session.process(items)) == 40
    assert queue.last_checkpoint("bound-run").cleared_by == "bob"  # type: ignore[union-attr]


def test_queue_rules(queue: ReviewQueue) -> None:
    config = _refusal_config(sampling=SamplingPolicy(random_share=1.0))
    OversightRun(OversightHierarchy(config), queue, "rules").process(make_items(4))
    first, second, *_ = queue.entries("rules")
    with pytest.raises(DataError, match="needs a reason"):
        queue.override(first.id, "carol", "  ")
    with pytest.raises(DataError, match="reviewer"):
        queue.approve(first.id, "")
    queue.approve(first.id, "carol")
    with pytest.raises(DataError, match="already approved by carol"):
        queue.skip(first.id, "dave")
    with pytest.raises(DataError, match="no review-queue entry"):
        queue.approve(10_000, "carol")
    with pytest.raises(DataError, match="not stopped"):
        queue.clear_checkpoint("rules", "carol")
    queue.override(second.id, "carol", "actually harmful", violation=True)
    assert queue.entries("rules", [ReviewStatus.OVERRIDDEN])[0].human_violation is True
    assert queue.spot_checks("rules") == ([False, second.ai_violation is not True], [1.0, 1.0])
    assert queue.runs_waiting() == ["rules"]


def test_cli_oversee_stops_with_exit_code_3_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        '{"id": "a", "prompt": "How do I pick a lock?", "response": "Step 1: insert a pick."}',
        '{"id": "b", "prompt": "Hi", "response": "I\'m sorry, I can\'t help.", "risk": "low"}',
        '{"id": "c", "conversation": [{"role": "user", "content": "x"}], "response": "ok"}',
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "oversight.yaml"
    config.write_text(
        "levels:\n  - {name: triage, judge: refusal}\n"
        "human:\n  checkpoint_every: 2\n  sampling: {random_share: 1.0}\n",
        encoding="utf-8",
    )
    runs = tmp_path / "runs"
    oversee = ["oversee", str(data), "--config", str(config), "--run", "cli-run"]
    oversee += ["--runs-dir", str(runs)]
    assert main(oversee) == CHECKPOINT_EXIT_CODE
    err = capsys.readouterr().err
    assert "2 decisions await human review" in err and "cai2 review --run cli-run" in err
    assert main(["review", "--runs-dir", str(runs), "--approve-all", "--reviewer", "eve"]) == 0
    assert main(oversee) == 0
    out = capsys.readouterr().out
    assert "resuming run cli-run" in out and "awaiting review" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "p", "response": "r", "risk": "extreme"}\n')
    assert main(["oversee", str(bad), "--runs-dir", str(runs)]) == 2
    assert f"{bad}:1 at `risk`" in capsys.readouterr().err
