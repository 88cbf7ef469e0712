"""The `generate` stage with `executor: ray`: same records as local, resumable across executors."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cai2.errors import ConfigError
from cai2.pipeline import StageProgress, load_recipe, run_recipe
from cai2.store import Status


def write_recipe(directory: Path, executor: str, count: int = 12) -> Path:
    with (directory / "prompts.jsonl").open("w") as out:
        for i in range(count):
            out.write(json.dumps({"id": f"p{i:02d}", "prompt": f"Question {i}: a colour?"}) + "\n")
    path = directory / f"recipe-{executor}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: scale-run
            model: hf:tiny
            stages:
              - stage: generate
                config:
                  prompts: prompts.jsonl
                  batch_size: 4
                  params: {{max_tokens: 6}}
                  executor: {executor}
                  workers: 2
            """
        ).lstrip()
    )
    return path


def comparable(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["id"], r["response"], r["completion_tokens"], r["model"]) for r in records]


def test_ray_executor_writes_what_local_writes_and_resumes_across_executors(
    ray_runtime: Any, tmp_path: Path
) -> None:
    local_run = run_recipe(write_recipe(tmp_path, "local"), runs_dir=tmp_path / "local")
    local_records = local_run.read_jsonl("generate/responses.jsonl")
    # The executor is not part of the stage's hash: the same stage config, wherever it runs.
    assert (
        load_recipe(write_recipe(tmp_path, "ray")).stages[0].config_hash
        == load_recipe(write_recipe(tmp_path, "local")).stages[0].config_hash
    )

    # Interrupt a local run after its first batch, then finish it on Ray: every id once.
    def stop_after_first_batch(report: StageProgress) -> None:
        if report.completed == 4:
            raise KeyboardInterrupt

    resumed_dir = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_recipe(
            write_recipe(tmp_path, "local"),
            runs_dir=resumed_dir,
            on_progress=stop_after_first_batch,
        )
    reports: list[StageProgress] = []
    resumed = run_recipe(
        write_recipe(tmp_path, "ray"), runs_dir=resumed_dir, on_progress=reports.append
    )
    records = resumed.read_jsonl("generate/responses.jsonl")
    assert Counter(r["id"] for r in records) == Counter(f"p{i:02d}" for i in range(12))
    assert sorted(comparable(records)) == sorted(comparable(local_records))
    assert reports[0].completed == 4 and reports[-1].completed == 12
    assert set(records[0]) == set(local_records[0])
    assert resumed.status is Status.DONE
    assert resumed.record.stages[0].metrics["responses"] == 12
    assert "executor" not in json.dumps(resumed.config["stages"])  # not part of the config


def test_unknown_executor_is_a_config_error(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, "dask")
    with pytest.raises(ConfigError, match="executor") as caught:
        load_recipe(path)
    assert caught.value.line == 9


def test_the_documented_example_recipe_runs_both_executors() -> None:
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "ray-example.yaml"
    loaded = load_recipe(recipe)
    executors = {stage.id: stage.config.executor for stage in loaded.stages}  # type: ignore[attr-defined]
    assert executors == {"local": "local", "ray": "ray"}
    # Identical stage configs apart from where they run.
    assert loaded.stages[0].config_hash == loaded.stages[1].config_hash
