"""The `pretrain` stage in a recipe, resuming after the done marker, chaining, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from pytest import CaptureFixture

from cai2.cli import main
from cai2.models import load_model
from cai2.pipeline import (
    STAGES,
    PretrainConfig,
    Recipe,
    StageContext,
    StageEntry,
    run_pretrain,
    run_recipe,
)
from cai2.store import RunStore

STAGE_CONFIG = {
    "judge": "refusal",
    "training": {"max_steps": 2, "batch_size": 3},
}


def test_stage_trains_and_a_later_stage_uses_its_model(chat_corpus: Path, tmp_path: Path) -> None:
    assert "pretrain" in STAGES
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"id": "q1", "prompt": "Name a colour."}) + "\n")
    recipe = Recipe(
        name="pretrain-test",
        model="hf:tiny",
        runs_dir=tmp_path / "runs",
        stages=[
            StageEntry(
                stage="pretrain",
                config={**STAGE_CONFIG, "corpus": {"files": [str(chat_corpus)]}},
            ),
            StageEntry(
                stage="generate",
                config={
                    "prompts": str(prompts),
                    "model": "@pretrain",
                    "params": {"max_tokens": 3},
                },
            ),
        ],
    )
    run = run_recipe(recipe)
    metrics = run.record.stages[0].metrics
    assert metrics["corpus_segments"] == 6
    assert metrics["corpus_aligned"] == 3 and metrics["corpus_misaligned"] == 3
    assert metrics["pretrain_steps"] == 2 and metrics["pretrain_changed_tensors"] > 0
    assert metrics["pretrain_conditional"] is True
    assert str(metrics["model_out"]).startswith("hf:")
    folder = run.dir / "artifacts" / "pretrain"
    for name in ("segments.jsonl", "scored.jsonl", "corpus.json", "pretrain_done.json", "model"):
        assert (folder / name).exists(), name
    assert run.record.stages[1].status.value == "done"
    answered = (run.dir / "artifacts" / "generate" / "responses.jsonl").read_text().splitlines()
    assert json.loads(answered[0])["model"] == metrics["model_out"]


def test_stage_resumes_after_the_done_marker(chat_corpus: Path, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    run = store.create_run("resume", {})
    stage = run.stage("pretrain")
    context = StageContext(
        run=run, stage=stage, model_spec="hf:tiny", base_dir=tmp_path, load_model=load_model
    )
    config = PretrainConfig.model_validate(
        {**STAGE_CONFIG, "corpus": {"files": [str(chat_corpus)]}}
    )
    first = run_pretrain(context, config)
    weights = stage.path("model") / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    second = run_pretrain(context, config)  # a resumed run: nothing is rebuilt or retrained
    assert second == first
    assert weights.stat().st_mtime_ns == stamp
    store.close()


def test_cli_runs_the_stage_end_to_end(
    chat_corpus: Path, tmp_path: Path, capsys: CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("A calm paragraph about gardens and the plants that grow in them.\n")
    args = [
        "pipeline",
        "pretrain",
        "--model",
        "hf:tiny",
        "--file",
        str(chat_corpus),
        "--file",
        str(text),
        "--judge",
        "refusal",
        "--max-steps",
        "1",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "pt",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "corpus_segments: 7" in out and "pretrain_steps: 1" in out and "model_out: hf:" in out
    assert (tmp_path / "runs" / "pt" / "artifacts" / "pretrain" / "model").is_dir()


def test_cli_reports_bad_corpus_lines(tmp_path: Path, capsys: CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"oops": 1}\n')
    args = ["pipeline", "pretrain", "--model", "hf:tiny", "--file", str(bad), "--judge", "refusal"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "bad.jsonl:2: needs a string `text`" in capsys.readouterr().err
