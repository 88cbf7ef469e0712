"""Chaining stages with `@<stage id>` model references, and the `evaluate` stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cai2.errors import ConfigError
from cai2.pipeline import Recipe, StageProgress, run_recipe

SHORT = {"max_tokens": 4}
SL_CONFIG: dict[str, Any] = {
    "limit_per_set": 2,
    "policy": "cai-1.0",
    "rounds": 1,
    "critique": {"response": SHORT, "critique": SHORT, "revision": SHORT, "judge": None},
    "keep_unrevised_kinds": ["helpful", "harmful"],
    "sft": {"max_steps": 1, "batch_size": 2},
}
EVAL_CONFIG: dict[str, Any] = {
    "n_harmful": 3,
    "n_benign": 3,
    "max_tokens": 4,
    "shifts": ["typos"],
    "harm_judge": "refusal",
    "bootstrap_resamples": 200,
}


def test_a_later_stage_uses_the_model_an_earlier_stage_made(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(
        {
            "name": "chain",
            "model": "hf:tiny",
            "runs_dir": str(tmp_path),
            "stages": [
                {"stage": "sl", "id": "first", "config": SL_CONFIG},
                {"stage": "sl", "id": "second", "config": {**SL_CONFIG, "model": "@first"}},
                {
                    "stage": "evaluate",
                    "config": {
                        "models": {"base": "hf:tiny", "once": "@first", "tuned": "@second"},
                        "eval": EVAL_CONFIG,
                        "reduction_against": "base",
                    },
                },
            ],
        }
    )
    run = run_recipe(recipe)
    stages = {s.name: s.metrics for s in run.record.stages}
    first_out = stages["first"]["model_out"]
    assert first_out == f"hf:{run.dir / 'artifacts' / 'first' / 'model'}"
    second_out = stages["second"]["model_out"]
    assert second_out != first_out and Path(second_out[3:], "model.safetensors").exists()
    summary = json.loads((run.dir / "artifacts" / "evaluate" / "summary.json").read_text())
    assert summary["labels"] == {"base": "hf:tiny", "once": first_out, "tuned": second_out}
    for label in ("base", "once", "tuned"):
        row = summary["models"][label]
        assert row["n_harmful"] == 3 and row["n_benign"] == 3
        assert 0.0 <= row["harm_rate_raw"] <= 1.0 and row["asi"] is not None
    # The random tiny models never refuse, so both are harmful on every item: no reduction.
    assert summary["relative_reduction"]["tuned"]["estimate"] == 0.0
    assert stages["evaluate"]["tuned_reduction_vs_base"] == 0.0
    page = (run.dir / "artifacts" / "evaluate" / "report.html").read_text(encoding="utf-8")
    assert "base (hf:tiny)" in page and "tuned (…" in page  # labels, with run paths cut short
    assert second_out not in page
    report = json.loads((run.dir / "artifacts" / "evaluate" / "report.json").read_text())
    assert second_out in json.dumps(report)  # the JSON keeps the full specs
    # McNemar for every pair of models, not only against the first
    pairs = [(c["model_a"], c["model_b"]) for c in report["comparisons"]]
    assert pairs == [("hf:tiny", first_out), ("hf:tiny", second_out), (first_out, second_out)]


def test_a_moved_run_folder_resumes_with_the_models_inside_it(tmp_path: Path) -> None:
    def recipe(runs_dir: Path) -> Recipe:
        return Recipe.model_validate(
            {
                "name": "moved",
                "model": "hf:tiny",
                "runs_dir": str(runs_dir),
                "stages": [
                    {"stage": "sl", "id": "first", "config": SL_CONFIG},
                    {"stage": "sl", "id": "second", "config": {**SL_CONFIG, "model": "@first"}},
                ],
            }
        )

    def stop_at_second(report: StageProgress) -> None:
        if report.stage == "second":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_recipe(recipe(tmp_path / "here"), on_progress=stop_at_second)
    (tmp_path / "here").rename(tmp_path / "there")
    run = run_recipe(recipe(tmp_path / "there"))
    stages = {s.name: s.metrics for s in run.record.stages}
    assert run.dir == tmp_path / "there" / "moved"
    recorded = tmp_path / "here" / "moved" / "artifacts" / "first" / "model"
    assert stages["first"]["model_out"] == f"hf:{recorded}"  # as recorded before the move
    second = run.dir / "artifacts" / "second"
    assert stages["second"]["model_out"] == f"hf:{second / 'model'}"
    assert (second / "model" / "model.safetensors").exists()
    log = (run.dir / "run.log").read_text(encoding="utf-8")
    assert f"loading model hf:{run.dir / 'artifacts' / 'first' / 'model'}" in log


def test_a_reference_to_a_stage_that_has_not_run_is_a_clear_error(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(
        {
            "name": "bad-chain",
            "model": "hf:tiny",
            "runs_dir": str(tmp_path),
            "stages": [{"stage": "sl", "config": {**SL_CONFIG, "model": "@later"}}],
        }
    )
    with pytest.raises(ConfigError, match="`@later` names no model"):
        run_recipe(recipe)


def test_evaluate_rejects_an_unknown_reduction_label(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(
        {
            "name": "bad-eval",
            "model": "hf:tiny",
            "runs_dir": str(tmp_path),
            "stages": [
                {
                    "stage": "evaluate",
                    "config": {
                        "models": {"base": "hf:tiny"},
                        "eval": EVAL_CONFIG,
                        "reduction_against": "cai1",
                    },
                }
            ],
        }
    )
    with pytest.raises(ConfigError, match="not one of the labels"):
        run_recipe(recipe)


def test_cai2_run_ends_with_the_results_table_and_report_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from cai2.cli import main

    path = tmp_path / "eval.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "eval-only",
                "model": "hf:tiny",
                "stages": [
                    {
                        "stage": "evaluate",
                        "config": {"models": {"tiny": "hf:tiny"}, "eval": EVAL_CONFIG},
                    }
                ],
            }
        )
    )
    assert main(["run", str(path), "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "evaluation (held-out items)" in out and "tiny (hf:tiny)" in out
    report = out.split("report: ", 1)[1].splitlines()[0]
    assert report.endswith("report.html") and Path(report).exists()
