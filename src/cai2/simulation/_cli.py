"""`cai2 simulate` (protocols across orders of magnitude) and `cai2 simulate-nso` (one NSO gap)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cai2.config import read_yaml, validate_with_location
from cai2.errors import ConfigError
from cai2.simulation._elo import OversightGame, engels_reference_points, optimal_nso
from cai2.simulation._empirical import load_empirical_config
from cai2.simulation._protocols import PROTOCOLS
from cai2.simulation._report import write_report
from cai2.simulation._sweep import SweepConfig, run_sweep

OUT_OPTION = typer.Option(
    None, "--out", help="Output folder (default: ./runs/simulate-<UTC timestamp>)."
)
CONFIG_OPTION = typer.Option(
    None, "--config", help="YAML file with a full or partial sweep configuration."
)
KAPPA_OPTION = typer.Option(
    None, "--kappa", help="General Elo per order of magnitude; repeat to sweep several."
)
JUDGES_OPTION = typer.Option(
    None,
    "--judges",
    help="YAML of measured judges (`judges:` list, optional `houdini_slope`): empirical mode.",
)


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return SweepConfig().model_dump(mode="json")
    document = read_yaml(path)
    base = document.validate(SweepConfig)  # located errors for the file itself
    return base.model_dump(mode="json")


def _apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> SweepConfig:
    hierarchy_params = {
        key: overrides.pop(key)
        for key in ("spot_check_rate", "checkpoint_every")
        if overrides.get(key) is not None
    }
    advantage = overrides.pop("guard_advantage", None)
    failure = {
        k: overrides.pop(k) for k in ("correlation", "compromise_probability") if k in overrides
    }
    data.update({key: value for key, value in overrides.items() if value is not None})
    if advantage is not None:
        data["game"] = OversightGame.with_guard_advantage(advantage).model_dump(mode="json")
    data["failure"].update({key: value for key, value in failure.items() if value is not None})
    for entry in data["protocols"]:
        if entry["protocol"] == "hierarchy":
            entry["params"].update(hierarchy_params)
    return validate_with_location(SweepConfig, data)


def simulate(
    out: Path | None = OUT_OPTION,
    config: Path | None = CONFIG_OPTION,
    orders_max: float | None = typer.Option(
        None, "--orders-max", help="Largest orders of magnitude."
    ),
    points: int | None = typer.Option(None, "--points", help="Grid points over the orders range."),
    kappa: list[float] | None = KAPPA_OPTION,
    guard_advantage: float | None = typer.Option(
        None,
        "--guard-advantage",
        help="Use parallel slope-1 curves with the Guard this many domain Elo ahead of an "
        "equally capable Houdini.",
    ),
    trials: int | None = typer.Option(None, "--trials", help="Monte Carlo cycles per point."),
    seed: int | None = typer.Option(None, "--seed", help="Monte Carlo seed."),
    correlation: float | None = typer.Option(
        None, "--rho", help="Copula correlation of miss events (0–0.95)."
    ),
    compromise: float | None = typer.Option(
        None, "--q", help="Probability that an AI overseer is compromised."
    ),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", help="Human checkpoint every k levels (all hierarchies)."
    ),
    spot_check: float | None = typer.Option(
        None, "--spot-check", help="Human spot-check rate of other levels (all hierarchies)."
    ),
    judges: Path | None = JUDGES_OPTION,
    no_failure_study: bool = typer.Option(
        False, "--no-failure-study", help="Skip the failure-mode study."
    ),
    list_protocols: bool = typer.Option(
        False, "--list-protocols", help="List the registered protocols and exit."
    ),
) -> None:
    """Compare oversight protocols across orders of magnitude of compute (JSON, plots, summary)."""
    console = Console()
    if list_protocols:
        for name in PROTOCOLS.names():
            console.print(name)
        return
    data = _load_config(config)
    if judges is not None:
        data["empirical"] = load_empirical_config(judges).model_dump(mode="json")
    if no_failure_study:
        data["failure_study"] = None
    sweep = _apply_overrides(
        data,
        {
            "orders_max": orders_max,
            "points": points,
            "elo_per_order": kappa or None,
            "trials": trials,
            "seed": seed,
            "guard_advantage": guard_advantage,
            "correlation": correlation,
            "compromise_probability": compromise,
            "checkpoint_every": checkpoint_every,
            "spot_check_rate": spot_check,
        },
    )
    out_dir = out or Path("runs") / f"simulate-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    with Progress(
        TextColumn("[bold]simulating"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("sweep", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = run_sweep(sweep, progress=advance)
    files = write_report(result, out_dir)
    _print_claims(console, result.claim_check())
    check = result.mc_check()
    if check["comparisons"]:
        console.print(
            "Monte Carlo inside the exact 99% interval: "
            f"{check['within_99']}/{check['comparisons']}"
        )
    console.print(f"wrote {', '.join(path.name for path in files.values())} to {out_dir}")


def _print_claims(console: Console, rows: list[dict[str, Any]]) -> None:
    table = Table(title="orders of magnitude with success ≥ target")
    for column in ("protocol", "κ", "orders kept", "success @4", "success @max"):
        table.add_column(column)
    for row in rows:
        kept = "never" if row["orders_kept"] is None else f"{row['orders_kept']:.1f}"
        at4 = "–" if row["success_at_4_orders"] is None else f"{row['success_at_4_orders']:.3f}"
        table.add_row(
            row["label"], f"{row['elo_per_order']:g}", kept, at4, f"{row['success_at_max']:.3f}"
        )
    console.print(table)


def simulate_nso(
    general_gap: float | None = typer.Option(None, "--general-gap", help="General-Elo gap."),
    domain_gap: float | None = typer.Option(None, "--domain-gap", help="Domain-Elo gap."),
    guard_slope: float = typer.Option(1.0, "--guard-slope", help="Guard domain-Elo slope."),
    houdini_slope: float = typer.Option(1.0, "--houdini-slope", help="Houdini domain-Elo slope."),
    max_steps: int = typer.Option(30, "--max-steps", help="Largest number of steps shown."),
) -> None:
    """Success of nested scalable oversight per number of steps (Engels et al. 2025).

    Without gaps, prints the paper's reference points next to this model's values.
    """
    console = Console()
    if general_gap is None and domain_gap is None:
        table = Table(title="Engels et al. (2025) reference points, slopes 1")
        for column in ("general gap", "domain gap", "steps", "computed", "published", "err (pp)"):
            table.add_column(column)
        for point in engels_reference_points():
            steps = f"{point.computed_steps}" + (" (optimal)" if point.steps is None else "")
            table.add_row(
                f"{point.general_gap:g}",
                f"{point.domain_gap:g}",
                steps,
                f"{100 * point.success:.2f}%",
                f"{100 * point.published_success:.1f}%",
                f"{point.error_pp:.3f}",
            )
        console.print(table)
        return
    if general_gap is None or domain_gap is None:
        raise ConfigError("give both `--general-gap` and `--domain-gap`, or neither")
    game = OversightGame.from_gaps(
        general_gap, domain_gap, guard_slope=guard_slope, houdini_slope=houdini_slope
    )
    plan = optimal_nso(game, 0.0, general_gap, max_steps=max_steps)
    table = Table(title=f"NSO, general gap {general_gap:g}, domain gap {domain_gap:g}")
    table.add_column("steps")
    table.add_column("P(success)")
    for count, success in enumerate(plan.success_by_steps, start=1):
        mark = " ← optimal" if count == plan.steps else ""
        table.add_row(str(count), f"{100 * success:.2f}%{mark}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `simulate` and `simulate-nso` to the `cai2` app."""
    app.command("simulate")(simulate)
    app.command("simulate-nso")(simulate_nso)
