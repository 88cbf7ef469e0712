"""`cai2 judge list | train | calibrate`: build judges and measure them against human labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cai2.errors import ConfigError
from cai2.judges._calibration import calibrate
from cai2.judges._heads import EmbeddingHeadJudge, HiddenStateHeadJudge, TrainedHeadJudge
from cai2.judges._pyrit import ScorerEvalName
from cai2.judges._training import (
    JUDGES,
    EnsembleJudge,
    build_judge,
    default_path,
    objective_splits,
    train_head,
)

console = Console()
err_console = Console(stderr=True)
judge_app = typer.Typer(help="Judges: train them and calibrate them against human labels.")
SPLITS = ("heldout", "calibration", "fit")


def register(app: typer.Typer) -> None:
    """Add the `judge` command group to the cai2 app."""
    app.add_typer(judge_app, name="judge")


def _extra(value: str) -> tuple[ScorerEvalName, ...]:
    if value == "none":
        return ()
    if value != "harm":
        raise ConfigError(f"`--extra` must be `harm` or `none`; got `{value}`")
    return ("harm",)


def _options(name: str, model: str | None, path: Path | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if model is not None:
        if name not in {"hidden-head", "llm-mc"}:
            raise ConfigError(f"`--model` applies to `hidden-head` and `llm-mc`, not `{name}`")
        options["model"] = model
    if path is not None:
        if name not in {"embedding-head", "hidden-head", "ensemble"}:
            raise ConfigError(f"`--path` applies to trained judges, not `{name}`")
        options["path"] = path
    return options


@judge_app.command("list")
def list_command() -> None:
    """List the registered judges and where their trained files live."""
    table = Table(show_header=True)
    table.add_column("judge")
    table.add_column("trained file")
    for name in JUDGES.names():
        trained = name in {"embedding-head", "hidden-head", "ensemble"}
        path = default_path(name)
        state = (str(path) + ("" if path.exists() else " (not trained yet)")) if trained else "—"
        table.add_row(name, state)
    console.print(table)


@judge_app.command("train")
def train_command(
    judge: str = typer.Option(..., "--judge", help="embedding-head, hidden-head or ensemble."),
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to save (default: the cache).")
    ] = None,
    model: str | None = typer.Option(
        None, "--model", help="Model spec for hidden-head (default hf:smollm2-135m)."
    ),
    layer: int = typer.Option(-1, "--layer", help="Hidden-state layer for hidden-head."),
    extra: str = typer.Option(
        "harm", "--extra", help="Extra training replies: `harm` (PyRIT harm set) or `none`."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the data split and cross-validation."),
) -> None:
    """Train a judge on the fit split of PyRIT's objective set (never on the held-out split)."""
    head: TrainedHeadJudge
    if judge == "embedding-head":
        head = EmbeddingHeadJudge()
    elif judge == "hidden-head":
        head = HiddenStateHeadJudge(model or "hf:smollm2-135m", layer)
    elif judge == "ensemble":
        members = [build_judge("refusal"), build_judge("embedding-head")]
        ensemble = EnsembleJudge(members)
        with err_console.status("fitting the ensemble on the calibration split…"):
            ensemble.fit(objective_splits(seed).calibration)
        path = ensemble.save(out or default_path("ensemble"))
        console.print(f"saved ensemble (weights {ensemble.weights.round(3).tolist()}) to {path}")
        return
    else:
        raise ConfigError(
            f"`--judge {judge}` cannot be trained; trainable: embedding-head, hidden-head, ensemble"
        )
    with err_console.status(f"training {judge} (features, then cross-validated logistic head)…"):
        path = train_head(head, out or default_path(judge), seed=seed, extra=_extra(extra))
    console.print(
        f"saved {judge} (n_train={head.meta['n_train']}, C={head.meta['regularisation_C']:.3g}) "
        f"to {path}"
    )


@judge_app.command("calibrate")
def calibrate_command(
    judge: str = typer.Option(
        ..., "--judge", help="Registered judge name (see `cai2 judge list`)."
    ),
    split: str = typer.Option(
        "heldout",
        "--split",
        help="Which split of PyRIT's objective set: heldout, calibration, fit.",
    ),
    model: str | None = typer.Option(None, "--model", help="Model spec for hidden-head / llm-mc."),
    path: Annotated[Path | None, typer.Option("--path", help="Trained judge file to load.")] = None,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the JSON report here.")
    ] = None,
    seed: int = typer.Option(0, "--seed", help="Seed of the data split."),
) -> None:
    """Measure a judge against PyRIT's human labels: accuracy, κ, AUROC, ECE, sens./spec."""
    if split not in SPLITS:
        raise ConfigError(f"`--split` must be one of {', '.join(SPLITS)}; got `{split}`")
    built = build_judge(judge, **_options(judge, model, path))
    splits = objective_splits(seed, extra=())
    rows = getattr(splits, split)
    report = calibrate(built, rows, dataset=f"pyrit:objective:{split}", show_progress=not as_json)
    text = report.to_json(out)
    if as_json:
        typer.echo(text)
        return
    table = Table(title=f"{judge} vs human labels ({report.dataset}, n={report.n})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("accuracy", "kappa", "auroc", "ece", "brier", "sensitivity", "specificity"):
        value = getattr(report, key)
        table.add_row(key, "—" if value is None else f"{value:.3f}")
    table.add_row("judged", f"{report.n_judged}/{report.n}")
    console.print(table)
    console.print(json.dumps(report.confusion))
