"""Files a simulation run writes: ``results.json``, PNG plots and a markdown summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cai2.errors import Cai2Error
from cai2.simulation._elo import ReferencePoint, engels_reference_points
from cai2.simulation._sweep import ProtocolCurve, SweepResult

DPI = 90
PNG_OPTIONS = {"optimize": True}  # smaller files, same pixels
PLOT_FILES = {
    "success": "success.png",
    "human_effort": "human_effort.png",
    "optimal_depth": "optimal_depth.png",
    "failure_modes": "failure_modes.png",
}


def reference_json(points: list[ReferencePoint]) -> dict[str, Any]:
    """The Engels et al. reference points and the largest error in percentage points."""
    rows = [
        {
            "general_gap": point.general_gap,
            "domain_gap": point.domain_gap,
            "steps": point.steps if point.steps is not None else "optimal",
            "computed_steps": point.computed_steps,
            "published_steps": point.published_steps,
            "success": point.success,
            "published_success": point.published_success,
            "error_pp": point.error_pp,
        }
        for point in points
    ]
    return {"points": rows, "max_abs_err_pp": max(point.error_pp for point in points)}


def write_report(result: SweepResult, out_dir: Path) -> dict[str, Path]:
    """Write ``results.json``, the plots and ``summary.md`` into ``out_dir``.

    Returns:
        Paths of the written files by kind (``results``, ``summary`` and the plot names).

    Raises:
        Cai2Error: when ``out_dir`` cannot be written.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Cai2Error(f"cannot create the output folder {out_dir}: {exc}") from exc
    payload = result.to_json()
    payload["engels_reference"] = reference_json(engels_reference_points())
    files = {"results": out_dir / "results.json", "summary": out_dir / "summary.md"}
    files["results"].write_text(json.dumps(payload, indent=1, allow_nan=False), encoding="utf-8")
    files.update({name: out_dir / file for name, file in PLOT_FILES.items()})
    plot_success(result).savefig(files["success"], dpi=DPI, pil_kwargs=PNG_OPTIONS)
    plot_human_effort(result).savefig(files["human_effort"], dpi=DPI, pil_kwargs=PNG_OPTIONS)
    plot_optimal_depth(result).savefig(files["optimal_depth"], dpi=DPI, pil_kwargs=PNG_OPTIONS)
    if result.failure_study is not None:
        plot_failure_modes(result.failure_study).savefig(
            files["failure_modes"], dpi=DPI, pil_kwargs=PNG_OPTIONS
        )
    else:
        del files["failure_modes"]
    files["summary"].write_text(summary_markdown(result, payload, files), encoding="utf-8")
    return files


def _by_kappa(result: SweepResult) -> dict[float, list[ProtocolCurve]]:
    groups: dict[float, list[ProtocolCurve]] = {}
    for curve in result.curves:
        groups.setdefault(curve.elo_per_order, []).append(curve)
    return groups


def _panels(count: int, height: float = 3.6) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(4.6 * count, height), layout="constrained")
    axes = figure.subplots(1, count, squeeze=False)[0]
    return figure, list(axes)


def plot_success(result: SweepResult) -> Figure:
    """Success vs orders of magnitude, one panel per κ; lines exact, bands 95% Monte Carlo."""
    groups = _by_kappa(result)
    figure, axes = _panels(len(groups))
    for axis, (kappa, curves) in zip(axes, groups.items(), strict=True):
        for curve in curves:
            (line,) = axis.plot(result.orders, curve.success, label=curve.label)
            if result.config.trials > 0:
                axis.fill_between(
                    result.orders, curve.mc_low, curve.mc_high, color=line.get_color(), alpha=0.25
                )
        axis.axhline(result.config.success_target, color="grey", linestyle=":", linewidth=1)
        axis.set_title(f"κ = {kappa:g} Elo per order of magnitude")
        axis.set_xlabel("orders of magnitude of compute above the overseer")
        axis.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("P(oversight succeeds)")
    axes[-1].legend(fontsize=7, loc="lower left")
    return figure


def plot_human_effort(result: SweepResult) -> Figure:
    """Expected human oversight games per cycle vs orders of magnitude, one panel per κ."""
    groups = _by_kappa(result)
    figure, axes = _panels(len(groups))
    for axis, (kappa, curves) in zip(axes, groups.items(), strict=True):
        for curve in curves:
            axis.plot(result.orders, curve.human_effort, label=curve.label)
        axis.set_title(f"κ = {kappa:g}")
        axis.set_xlabel("orders of magnitude of compute above the overseer")
    axes[0].set_ylabel("human oversight games per cycle")
    axes[-1].legend(fontsize=7)
    return figure


def plot_optimal_depth(result: SweepResult) -> Figure:
    """Depth of each optimal-depth hierarchy vs orders of magnitude, one line per protocol and κ."""
    figure = Figure(figsize=(6.4, 3.8), layout="constrained")
    axis = figure.subplots()
    for curve in result.curves:
        if curve.protocol == "hierarchy" and np.ptp(curve.depth) > 0:
            axis.step(
                result.orders,
                curve.depth,
                where="mid",
                label=f"{curve.label}, κ = {curve.elo_per_order:g}",
            )
    axis.set_xlabel("orders of magnitude of compute above the overseer")
    axis.set_ylabel("oversight steps")
    axis.set_title("optimal hierarchy depth (argmax of exact success)")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7)
    return figure


def plot_failure_modes(study: dict[str, Any]) -> Figure:
    """Amplification factor (top / bottom error) vs q, one panel per ρ, one line per checkpoint."""
    correlations = sorted({cell["correlation"] for cell in study["cells"]})
    figure, axes = _panels(len(correlations))
    q = study["compromise_probabilities"]
    for axis, rho in zip(axes, correlations, strict=True):
        for cell in study["cells"]:
            if cell["correlation"] != rho:
                continue
            every = cell["checkpoint_every"]
            name = "no checkpoints" if every is None else f"checkpoint every {every}"
            values = [np.nan if value is None else value for value in cell["amplification"]]
            axis.plot(q, values, marker="o", markersize=3, label=name)
        axis.set_title(f"ρ = {rho:g}, depth {study['depth']}, {study['orders']:g} orders")
        axis.set_xlabel(f"q (compromise probability, mode `{study['compromise_mode']}`)")
    axes[0].set_ylabel("amplification (top error / bottom error)")
    axes[-1].legend(fontsize=7)
    return figure


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100.0 * value:.1f}%"


def summary_markdown(result: SweepResult, payload: dict[str, Any], files: dict[str, Path]) -> str:
    """The markdown summary of a run."""
    config = result.config
    lines = [
        "# Oversight scaling simulation",
        "",
        f"Orders of magnitude {config.orders_min:g}–{config.orders_max:g} "
        f"({config.points} points), "
        f"κ ∈ {{{', '.join(f'{k:g}' for k in config.elo_per_order)}}} Elo per order, "
        f"{config.trials} Monte Carlo cycles per point (seed {config.seed}).",
        "",
        "## Engels et al. (2025) reference points",
        "",
        "| general gap | domain gap | steps | computed | published | error (pp) |",
        "|---|---|---|---|---|---|",
    ]
    for row in payload["engels_reference"]["points"]:
        lines.append(
            f"| {row['general_gap']:g} | {row['domain_gap']:g} | {row['steps']} "
            f"(used {row['computed_steps']}) | {_percent(row['success'])} | "
            f"{_percent(row['published_success'])} | {row['error_pp']:.3f} |"
        )
    lines += [
        "",
        f"## Success vs scale (target {_percent(config.success_target)})",
        "",
        "| protocol | κ | orders kept ≥ target | success at 4 orders | success at max |",
        "|---|---|---|---|---|",
    ]
    for row in result.claim_check():
        kept = "never" if row["orders_kept"] is None else f"{row['orders_kept']:.1f}"
        lines.append(
            f"| {row['label']} | {row['elo_per_order']:g} | {kept} | "
            f"{_percent(row['success_at_4_orders'])} | {_percent(row['success_at_max'])} |"
        )
    check = payload["mc_check"]
    if check["comparisons"]:
        lines += [
            "",
            f"Monte Carlo vs exact: {check['within_99']} of {check['comparisons']} estimates "
            f"({_percent(check['fraction_within_99'])}) inside the 99% binomial interval of the "
            f"exact value (p = {check['p_value_outside_count']:.2f} for the number outside).",
        ]
    if result.failure_study is not None:
        study = result.failure_study
        lines += [
            "",
            f"## Failure modes (depth {study['depth']}, {study['orders']:g} orders, "
            f"κ = {study['elo_per_order']:g}, misalignment rate {study['misalignment_rate']:g})",
            "",
            "| ρ | checkpoints | human effort | top error q=0 | top error q=max | "
            "amplification q=0 | amplification q=max |",
            "|---|---|---|---|---|---|---|",
        ]
        for cell in study["cells"]:
            every = (
                "none" if cell["checkpoint_every"] is None else f"every {cell['checkpoint_every']}"
            )
            amp = cell["amplification"]
            lines.append(
                f"| {cell['correlation']:g} | {every} | {cell['human_effort']:.2f} | "
                f"{_percent(cell['top_error'][0])} | {_percent(cell['top_error'][-1])} | "
                f"{_fmt(amp[0])} | {_fmt(amp[-1])} |"
            )
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({path.name})" for name, path in files.items() if path.suffix == ".png"]
    lines += ["", "Full numbers and the configuration: `results.json`.", ""]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
