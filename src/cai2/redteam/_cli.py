"""`cai2 redteam` (attack a model, write the report) and `cai2 pipeline redteam` (the loop)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cai2.models import DEFAULT_GENERATION_SPEC

console = Console()


def _names(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def redteam_command(
    model: Annotated[str, typer.Option("--model", help="Model under attack (spec).")] = (
        DEFAULT_GENERATION_SPEC
    ),
    seeds: Annotated[
        str, typer.Option("--seeds", help="Seed sources, comma-separated.")
    ] = "advbench",
    split: Annotated[
        str, typer.Option("--split", help="`heldout`, `train` or `all` seeds of the sources.")
    ] = "heldout",
    limit: Annotated[int, typer.Option("--limit", min=1, help="Seeds to attack.")] = 20,
    strategies: Annotated[
        str | None,
        typer.Option("--strategies", help="Strategies, comma-separated (default: the suite)."),
    ] = None,
    budget: Annotated[int, typer.Option("--budget", min=1, help="Attempts per seed.")] = 1,
    judge: Annotated[str, typer.Option("--judge", help="Registered success judge.")] = "ensemble",
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, max=1.0)] = 0.5,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 64,
    attacker: Annotated[
        str | None, typer.Option("--attacker", help="Attacker model for `refine`.")
    ] = None,
    no_context: Annotated[
        bool, typer.Option("--no-context", help="Skip the context assessment (risk `high`).")
    ] = False,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for attempts.jsonl and the report.")
    ] = Path("redteam-report"),
    list_strategies: Annotated[
        bool, typer.Option("--list-strategies", help="List the strategies and exit.")
    ] = False,
) -> None:
    """Attack a model with the strategy suite on seeds and write a JSON + HTML report.

    Attempts are saved as they finish, so re-running with the same --out resumes.
    """
    from cai2.redteam._strategies import DEFAULT_SUITE, check_strategies, strategy_names

    if list_strategies:
        from cai2.redteam._strategies import ADAPTIVE_STRATEGIES, get_strategy

        table = Table("strategy", "family", "what it does", "in default suite")
        for name in strategy_names():
            if name in ADAPTIVE_STRATEGIES:
                table.add_row(name, "model-driven", "attacker rewrites from judge feedback", "no")
                continue
            strategy = get_strategy(name)
            table.add_row(
                name,
                strategy.family,
                strategy.description,
                "yes" if name in DEFAULT_SUITE else "no",
            )
        console.print(table)
        return
    from cai2.errors import ConfigError
    from cai2.evals._evaluate import calibrate_harm_judge
    from cai2.models import GenerationParams, load_model
    from cai2.redteam._attack import run_attacks
    from cai2.redteam._report import write_redteam_report
    from cai2.redteam._seeds import Split, load_seeds, tag_seeds, targeted_principles

    if split not in ("heldout", "train", "all"):
        raise ConfigError(f"--split must be heldout, train or all; got `{split}`", key="split")
    names = check_strategies(_names(strategies) or list(DEFAULT_SUITE))
    which: Split | None = None if split == "all" else ("train" if split == "train" else "heldout")
    chosen = load_seeds(_names(seeds) or [], split=which, limit=limit)
    if no_context:
        from dataclasses import replace

        principles = targeted_principles("", "high", ())
        chosen = [replace(s, principles=principles) for s in chosen]
    else:
        chosen = tag_seeds(chosen)
    success_judge, calibration = calibrate_harm_judge(judge, threshold)
    target = load_model(model)
    out.mkdir(parents=True, exist_ok=True)
    with _progress() as bar:
        task = bar.add_task(f"attacking {model}", total=None)
        records = run_attacks(
            target,
            chosen,
            names,
            success_judge,
            budget=budget,
            params=GenerationParams(max_tokens=max_tokens, temperature=0.0),
            threshold=threshold,
            output=out / "attempts.jsonl",
            attacker=load_model(attacker) if attacker else None,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    json_path, html_path = write_redteam_report(
        records, out, judge=calibration, extra={"model": model, "seeds": len(chosen)}
    )
    from cai2.redteam._report import asr, asr_by

    table = Table(
        "strategy", "ASR", "95% interval", "pairs", title=f"{model} on {len(chosen)} seeds"
    )
    for name, rate in asr_by(records, "strategy").items():
        table.add_row(
            name, f"{rate.estimate:.3f}", f"[{rate.low:.3f}, {rate.high:.3f}]", str(rate.n)
        )
    overall = asr(records)
    table.add_row(
        "all", f"{overall.estimate:.3f}", f"[{overall.low:.3f}, {overall.high:.3f}]", str(overall.n)
    )
    console.print(table)
    console.print(
        f"judge: {judge} (held-out accuracy {calibration.get('accuracy', float('nan')):.3f})"
    )
    typer.echo(f"report: {html_path}\njson: {json_path}")


def pipeline_redteam_command(
    model: Annotated[
        str, typer.Option("--model", help="Model to start from (an `hf:` spec).")
    ] = DEFAULT_GENERATION_SPEC,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Attack → train rounds.")] = 2,
    seeds_per_round: Annotated[
        int, typer.Option("--seeds-per-round", min=1, help="Fresh training seeds per round.")
    ] = 48,
    strategies: Annotated[
        str | None, typer.Option("--strategies", help="Strategies, comma-separated.")
    ] = None,
    judge: Annotated[str, typer.Option("--judge", help="Registered success judge.")] = "ensemble",
    heldout_eval: Annotated[
        int, typer.Option("--heldout-eval", min=0, help="Held-out seeds attacked each round.")
    ] = 0,
    benign_eval: Annotated[
        int, typer.Option("--benign-eval", min=0, help="Held-out benign prompts each round.")
    ] = 0,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=-1, help="SFT and DPO steps; -1 uses the epochs.")
    ] = -1,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Reply length.")] = 64,
    no_context: Annotated[
        bool, typer.Option("--no-context", help="Skip the context assessment (risk `high`).")
    ] = False,
    run_id: Annotated[str, typer.Option("--run-id", help="Run to create or resume.")] = "redteam",
    runs_dir: Annotated[Path | None, typer.Option("--runs-dir", help="Folder of runs.")] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Delete the run and start over.")
    ] = False,
) -> None:
    """Red-team rounds: attack, turn failures into SFT + DPO data, retrain, attack again."""
    from cai2.pipeline._single import run_single_stage

    config: dict[str, object] = {
        "rounds": rounds,
        "seeds_per_round": seeds_per_round,
        "judge": judge,
        "heldout_eval": heldout_eval,
        "benign_eval": benign_eval,
        "sft": {"max_steps": max_steps},
        "dpo": {"max_steps": max_steps},
        "assess_context": not no_context,
        "attack_params": {"max_tokens": max_tokens, "temperature": 0.0},
        "benign_params": {"max_tokens": max_tokens, "temperature": 0.0},
    }
    if strategies:
        config["strategies"] = _names(strategies)
    run = run_single_stage(
        "redteam", config, model=model, run_id=run_id, runs_dir=runs_dir, restart=restart
    )
    stage_dir = run.dir / "artifacts" / "redteam"
    for name in ("report", "report-training"):
        if (stage_dir / name / "report.html").exists():
            typer.echo(f"{name}: {stage_dir / name / 'report.html'}")


def register(app: typer.Typer) -> None:
    """Add `cai2 redteam` (the `pipeline redteam` command is added with the pipeline group)."""
    app.command("redteam")(redteam_command)
