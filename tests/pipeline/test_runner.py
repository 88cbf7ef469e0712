"""End-to-end recipe runs on the tiny model: artifacts, store records, interruption and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cai2.cli import main
from cai2.errors import ConfigError, DataError
from cai2.models import ChatModel
from cai2.pipeline import StageProgress, load_recipe, run_recipe
from cai2.store import RunStore, Status

Loader = tuple[Callable[[str], ChatModel], list[Any]]
WriteRecipe = Callable[..., Path]


def test_run_writes_responses_with_provenance_and_records_stages(
    tmp_path: Path, runs_dir: Path, counting_loader: Loader, write_recipe: WriteRecipe
) -> None:
    loader, made = counting_loader
    reports: list[StageProgress] = []
    run = run_recipe(write_recipe(tmp_path), model_loader=loader, on_progress=reports.append)

    assert run.id == "tiny-run" and run.dir == runs_dir.resolve() / "tiny-run"
    records = run.read_jsonl("generate/responses.jsonl")
    assert [r["id"] for r in records] == [f"p{i:02d}" for i in range(10)]
    first = records[0]
    assert first["prompt"] == "Question 0: name a colour."
    assert first["model"] == "hf:tiny"
    assert first["params"]["max_tokens"] == 4
    assert 1 <= first["completion_tokens"] <= 4
    assert first["finish_reason"] in {"stop", "length"}
    assert first["created_at"].endswith("+00:00")
    assert len(made) == 1 and len(made[0].prompts) == 10
    assert [r.completed for r in reports] == list(range(11))
    assert {r.total for r in reports} == {10}

    record = run.record
    assert record.status is Status.DONE
    (stage,) = record.stages
    assert (stage.name, stage.kind, stage.status) == ("generate", "generate", Status.DONE)
    assert stage.metrics["prompts"] == 10 and stage.metrics["responses"] == 10
    assert stage.metrics["completion_tokens"] == sum(r["completion_tokens"] for r in records)
    assert run.config["stages"][0]["config"]["batch_size"] == 4

    # A finished run re-run does nothing: no model is even loaded.
    again = run_recipe(write_recipe(tmp_path), model_loader=loader)
    assert again.id == run.id and len(made) == 1
    assert "stage `generate` already done; skipped" in run.log_path.read_text()


def test_interrupted_run_resumes_with_only_the_remaining_items(
    tmp_path: Path, runs_dir: Path, counting_loader: Loader, write_recipe: WriteRecipe
) -> None:
    loader, made = counting_loader
    recipe = write_recipe(tmp_path, count=10, batch_size=4)

    def stop_after_five(report: StageProgress) -> None:
        if report.completed == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe, model_loader=loader, on_progress=stop_after_five)
    store = RunStore(runs_dir)
    run = store.get_run("tiny-run")
    assert run.record.status is Status.FAILED
    assert run.stages()[0].error == "interrupted; rerun to resume"
    assert [r["id"] for r in run.read_jsonl("generate/responses.jsonl")] == [
        f"p{i:02d}" for i in range(5)
    ]

    reports: list[StageProgress] = []
    run_recipe(recipe, model_loader=loader, on_progress=reports.append)
    assert made[1].prompts == [f"Question {i}: name a colour." for i in range(5, 10)]
    assert reports[0] == StageProgress("generate", 5, 10)
    ids = [r["id"] for r in run.read_jsonl("generate/responses.jsonl")]
    assert Counter(ids) == Counter(f"p{i:02d}" for i in range(10))
    assert run.record.status is Status.DONE
    store.close()


def test_changed_config_is_refused_unless_restarted(
    tmp_path: Path, runs_dir: Path, counting_loader: Loader, write_recipe: WriteRecipe
) -> None:
    loader, made = counting_loader
    run_recipe(write_recipe(tmp_path, count=3), model_loader=loader)
    changed = write_recipe(tmp_path, count=3, max_tokens=6)

    with pytest.raises(ConfigError) as info:
        run_recipe(changed, model_loader=loader)
    error = info.value
    assert (error.file, error.line, error.key) == (str(changed), 5, "stages.0.config")
    assert "--restart" in error.message and "--run-id" in error.message

    other = run_recipe(changed, model_loader=loader, run_id="tiny-run-2")
    assert other.id == "tiny-run-2" and len(made) == 2

    restarted = run_recipe(changed, model_loader=loader, restart=True)
    assert len(made) == 3 and len(made[2].prompts) == 3
    records = restarted.read_jsonl("generate/responses.jsonl")
    assert len(records) == 3 and {r["params"]["max_tokens"] for r in records} == {6}


def _as_if_older_cai2(run: Any, drop: str) -> None:
    """Rewrite a run's saved config and stage hash as a cai2 without ``drop`` would have."""
    import yaml

    from cai2.store import config_hash

    config = run.config
    stage = config["stages"][0]
    del stage["config"][drop]
    hashed = {"stage": stage["stage"], "model": config["model"], "config": stage["config"]}
    (run.dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    run.stage(stage["id"]).set_config_hash(config_hash(hashed))


def test_settings_added_by_a_newer_version_at_their_defaults_still_resume(
    tmp_path: Path, runs_dir: Path, counting_loader: Loader, write_recipe: WriteRecipe
) -> None:
    loader, made = counting_loader
    recipe = write_recipe(tmp_path, count=3)
    run = run_recipe(recipe, model_loader=loader)
    _as_if_older_cai2(run, "system_prompt")

    again = run_recipe(recipe, model_loader=loader)  # `system_prompt` is new, at its default
    assert len(made) == 1 and again.record.status is Status.DONE
    log = run.log_path.read_text()
    assert "new since the run started, at their defaults: system_prompt; resuming" in log
    assert "system_prompt" in again.config["stages"][0]["config"]
    # The accepted config is now the run's own, so a third run resumes without the special case.
    planned_hash = load_recipe(recipe).stages[0].config_hash
    assert again.record.stages[0].config_hash == planned_hash
    third = run_recipe(recipe, model_loader=loader)
    assert len(made) == 1 and third.record.status is Status.DONE

    # A new setting the recipe sets away from its default is a real change.
    _as_if_older_cai2(again, "system_prompt")
    brief = "batch_size: 4\n      system_prompt: Be brief."
    recipe.write_text(recipe.read_text().replace("batch_size: 4", brief), encoding="utf-8")
    with pytest.raises(ConfigError, match="different config"):
        run_recipe(recipe, model_loader=loader)


def test_changed_prompt_file_is_refused_on_resume(
    tmp_path: Path,
    runs_dir: Path,
    counting_loader: Loader,
    write_recipe: WriteRecipe,
    write_prompts: Callable[[Path, int], Path],
) -> None:
    loader, _ = counting_loader
    recipe = write_recipe(tmp_path, count=6, batch_size=2)

    def stop_early(report: StageProgress) -> None:
        if report.completed == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe, model_loader=loader, on_progress=stop_early)
    write_prompts(tmp_path / "prompts.jsonl", 7)
    with pytest.raises(DataError, match="prompts of stage `generate` changed"):
        run_recipe(recipe, model_loader=loader)


def test_cli_run_then_show(
    tmp_path: Path,
    runs_dir: Path,
    capsys: pytest.CaptureFixture[str],
    tiny_model: ChatModel,
    write_recipe: WriteRecipe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # keep rich from wrapping long paths in table cells
    recipe = write_recipe(tmp_path, count=3)
    assert main(["run", str(recipe), "--runs-dir", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "run tiny-run: done" in out and "responses=3" in out
    assert main(["runs", "show", "tiny-run", "--runs-dir", str(runs_dir)]) == 0
    assert "responses.jsonl" in capsys.readouterr().out


def _default_sigint() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow  # a fresh interpreter imports torch and loads the model: tens of seconds
def test_ctrl_c_exits_130_and_the_run_resumes(
    tmp_path: Path, runs_dir: Path, write_recipe: WriteRecipe
) -> None:
    # One prompt per batch and many prompts, so the child is still busy when the signal comes even
    # when this process polls slowly on a loaded machine.
    recipe = write_recipe(tmp_path, count=48, batch_size=1, max_tokens=16)
    responses = runs_dir / "tiny-run" / "artifacts" / "generate" / "responses.jsonl"
    env = {**os.environ, "CAI2_RUNS_DIR": str(runs_dir)}
    child = subprocess.Popen(
        [sys.executable, "-m", "cai2.cli", "run", str(recipe)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A child inherits an ignored or blocked SIGINT (earlier tests' libraries, or a shell
        # running the suite in the background); give it the default handling a terminal gives.
        preexec_fn=_default_sigint,
    )
    try:
        while child.poll() is None:
            if responses.exists() and responses.read_text().count("\n") >= 4:
                child.send_signal(signal.SIGINT)
                break
            time.sleep(0.05)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, err
    assert "interrupted" in err
    written = responses.read_text().count("\n")
    assert 4 <= written < 48

    assert main(["run", str(recipe)]) == 0
    store = RunStore(runs_dir)
    run = store.get_run("tiny-run")
    ids = [r["id"] for r in run.read_jsonl("generate/responses.jsonl")]
    assert Counter(ids) == Counter(f"p{i:02d}" for i in range(48))
    assert run.record.status is Status.DONE
    store.close()
