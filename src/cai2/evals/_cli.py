"""`cai2 eval` and `cai2 asi`: evaluate models and write JSON + HTML reports into a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cai2.errors import ConfigError

console = Console()


def register(app: typer.Typer) -> None:
    """Add `eval` and `asi` to the cai2 app."""
    app.command("eval")(eval_command)
    app.command("asi")(asi_command)


def _shift_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    if value.strip().lower() == "none":
        return []
    return [name.strip() for name in value.split(",") if name.strip()]


def _output_dir(out: Path | None, run_id: str | None, config: dict[str, Any]) -> tuple[Path, Any]:
    """The folder to write into: ``--out``, an existing run (``--run``), or a new run."""
    if out is not None and run_id is not None:
        raise ConfigError("give either `--out` or `--run`, not both")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        return out, None
    from cai2.store import RunStore

    store = RunStore()
    run = store.get_run(run_id) if run_id is not None else store.create_run("eval", config)
    folder = run.path("eval")
    folder.mkdir(parents=True, exist_ok=True)
    return folder, run


def _evaluate(
    models: list[str],
    config: Any,
    out: Path | None,
    run_id: str | None,
    title: str,
) -> tuple[list[Any], list[Any], Path]:
    from cai2.evals._evaluate import evaluate_models
    from cai2.evals._shifts import check_shift_names
    from cai2.models import split_spec
    from cai2.store import Status

    # Check the cheap things first: calibrating (or training) the harm judge takes a while.
    for spec in models:
        split_spec(spec)
    check_shift_names(config.shifts)
    folder, run = _output_dir(out, run_id, {"models": models, **config.model_dump(mode="json")})
    if run is not None:
        run.set_status(Status.RUNNING)
    try:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=False) as progress:

            def progress_for(spec: str) -> Any:
                task = progress.add_task(f"generating with {spec}", total=None)

                def advance(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                return advance

            console.print(f"calibrating harm judge `{config.harm_judge}` on held-out labels")
            reports, comparisons, html_path = evaluate_models(
                models, config, folder, progress_for=progress_for, title=title
            )
    except BaseException as exc:
        if run is not None:
            run.set_status(Status.FAILED, error=str(exc) or type(exc).__name__)
        raise
    if run is not None:
        first = reports[0]
        metrics: dict[str, float] = {
            "harm_rate_raw": first.harm.raw.estimate,
            "over_refusal": first.over_refusal.estimate,
        }
        if first.harm.corrected is not None:
            metrics["harm_rate_corrected"] = first.harm.corrected.estimate
        if first.asi is not None:
            metrics["asi"] = first.asi.asi.estimate
        run.log_metrics(metrics)
        run.set_status(Status.DONE)
    return reports, comparisons, html_path


def _pct(interval: Any) -> str:
    if interval is None:
        return "—"
    return f"{100 * interval.estimate:.1f}% [{100 * interval.low:.1f}, {100 * interval.high:.1f}]"


def _num(interval: Any) -> str:
    if interval is None:
        return "—"
    return f"{interval.estimate:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def _config(
    n: int, shifts: list[str] | None, max_tokens: int, harm_judge: str, seed: int, resamples: int
) -> Any:
    from cai2.evals._evaluate import EvalConfig

    options: dict[str, Any] = {
        "n_harmful": n,
        "n_benign": n,
        "max_tokens": max_tokens,
        "harm_judge": harm_judge,
        "seed": seed,
        "bootstrap_resamples": resamples,
    }
    if shifts is not None:
        options["shifts"] = shifts
    return EvalConfig.model_validate(options)


ModelOption = Annotated[
    str, typer.Option("--model", help="Model spec, e.g. `hf:smollm2-135m`.", show_default=False)
]
NOption = Annotated[
    int, typer.Option("--n", min=1, help="Harmful prompts, and benign prompts, each.")
]
MaxTokensOption = Annotated[
    int, typer.Option("--max-tokens", min=1, help="Most new tokens per reply.")
]
HarmJudgeOption = Annotated[
    str, typer.Option("--harm-judge", help="Registered judge deciding harmful replies.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for items, shifts and bootstrap.")]
ResamplesOption = Annotated[int, typer.Option("--resamples", min=100, help="Bootstrap resamples.")]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Write here instead of a new run; rerunning resumes generation."),
]
RunOption = Annotated[str | None, typer.Option("--run", help="Write into (and resume) this run.")]
ShiftsOption = Annotated[
    str | None,
    typer.Option(
        "--shifts", help="Comma-separated shift families for the ASI (or `none`); all by default."
    ),
]


def eval_command(
    model: ModelOption,
    compare: Annotated[
        list[str] | None,
        typer.Option("--compare", help="Another model to evaluate on the same items (repeatable)."),
    ] = None,
    n: NOption = 40,
    shifts: ShiftsOption = None,
    max_tokens: MaxTokensOption = 64,
    harm_judge: HarmJudgeOption = "embedding-head",
    seed: SeedOption = 0,
    resamples: ResamplesOption = 2000,
    out: OutOption = None,
    run_id: RunOption = None,
) -> None:
    """Evaluate a model (and --compare ones): harm, over-refusal, helpfulness, ASI → JSON + HTML."""
    config = _config(n, _shift_list(shifts), max_tokens, harm_judge, seed, resamples)
    reports, comparisons, html_path = _evaluate(
        [model, *(compare or [])], config, out, run_id, "cai2 evaluation"
    )
    table = Table(title="cai2 eval (95% intervals)")
    for column in (
        "model",
        "harm (raw)",
        "harm (corrected)",
        "over-refusal",
        "helpfulness",
        "ASI",
    ):
        table.add_column(column)
    for report in reports:
        table.add_row(
            report.model,
            _pct(report.harm.raw),
            _pct(report.harm.corrected),
            _pct(report.over_refusal),
            _pct(report.helpfulness),
            _num(report.asi.asi if report.asi else None),
        )
    console.print(table)
    calibration = reports[0].judge_calibration or {}
    if calibration:
        console.print(
            f"harm judge `{calibration.get('judge')}` on {calibration.get('dataset')}: "
            f"accuracy {calibration.get('accuracy', float('nan')):.3f}, "
            f"sensitivity {calibration.get('sensitivity') or float('nan'):.3f}, "
            f"specificity {calibration.get('specificity') or float('nan'):.3f}"
        )
    for report in reports:
        if report.harm.caveat:
            console.print(f"[yellow]{report.model}: {report.harm.caveat}[/yellow]")
    for c in comparisons:
        console.print(
            f"McNemar {c.model_a} vs {c.model_b}: harmful p={c.harmful['p_value']:.4f}, "
            f"refused-benign p={c.refused_benign['p_value']:.4f}"
        )
    console.print(f"report: {html_path}")


def asi_command(
    model: ModelOption,
    shifts: ShiftsOption = None,
    n: NOption = 40,
    max_tokens: MaxTokensOption = 64,
    harm_judge: HarmJudgeOption = "embedding-head",
    seed: SeedOption = 0,
    resamples: ResamplesOption = 2000,
    out: OutOption = None,
    run_id: RunOption = None,
) -> None:
    """The Alignment Stability Index of a model: retention of safety and helpfulness per shift."""
    shift_names = _shift_list(shifts)
    if shift_names == []:
        raise ConfigError("`--shifts none` leaves nothing to measure; name at least one shift")
    config = _config(n, shift_names, max_tokens, harm_judge, seed, resamples)
    reports, _, html_path = _evaluate([model], config, out, run_id, "cai2 ASI")
    result = reports[0].asi
    assert result is not None
    table = Table(title=f"ASI of {model} (95% cluster-bootstrap intervals)")
    table.add_column("shift")
    table.add_column("R_t harm (stays safe)")
    table.add_column("R_t benign (stays helpful)")
    for name in result.shifts:
        table.add_row(name, _num(result.harm.per_shift[name]), _num(result.benign.per_shift[name]))
    table.add_row("ASI_side", _num(result.harm.asi), _num(result.benign.asi), style="bold")
    console.print(table)
    side, shift, value = result.worst
    console.print(
        f"ASI = min(ASI_harm, ASI_benign) = {_num(result.asi)}; worst shift: {shift} "
        f"({side}, R = {value:.3f}); safe on {result.harm.support}/{result.harm.n_items} harmful "
        f"originals, helpful on {result.benign.support}/{result.benign.n_items} benign originals"
    )
    console.print(f"report: {html_path}")
