"""The `evaluate` stage: evaluate several models of a run on the same held-out items.

```yaml
  - stage: evaluate
    config:
      models: {base: hf:smollm2-135m, cai1: "@cai1-rl", cai2: "@cai2-rl"}
      eval: {n_harmful: 60, n_benign: 60, max_tokens: 48}
```

Writes ``report.json`` and ``report.html`` (see :mod:`cai2.evals`) into the stage folder, each
model's generations in a sub-folder (an interrupted stage resumes), and ``summary.json``: harm
rate, over-refusal, helpfulness and ASI per label, plus the relative reduction of harmful outputs of
every model against the one named by ``reduction_against``, with a paired bootstrap interval.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cai2.config import StrictModel
from cai2.errors import ConfigError
from cai2.evals._evaluate import EvalConfig
from cai2.pipeline._context import StageContext, StageMetrics


class EvaluateConfig(StrictModel):
    """Settings of the `evaluate` stage."""

    models: dict[str, str] = Field(
        description="Label → model spec (or `@<stage id>` for a model an earlier stage made).",
    )
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation settings.")
    reduction_against: str | None = Field(
        None,
        description="Label whose harm rate the others' relative reduction is measured against.",
    )


def _estimate(interval: Any) -> float | None:
    return None if interval is None else float(interval.estimate)


def run_evaluate(context: StageContext, config: EvaluateConfig) -> StageMetrics:
    """Evaluate every model on the same items and summarise the comparison."""
    from cai2.evals._evaluate import evaluate_models, relative_reduction

    if not config.models:
        raise ConfigError("`models` is empty; name at least one model to evaluate", key="models")
    if config.reduction_against is not None and config.reduction_against not in config.models:
        raise ConfigError(
            f"`reduction_against` is `{config.reduction_against}`, which is not one of the "
            f"labels {sorted(config.models)}",
            key="reduction_against",
        )
    labels = list(config.models)
    specs = [context.model_for(config.models[label]) for label in labels]
    done = {"n": 0}

    def progress_for(spec: str) -> Any:
        def advance(completed: int, total: int) -> None:
            context.progress(done["n"] * total + completed, total * len(specs))

        done["n"] = specs.index(spec)
        return advance

    reports, _, html_path = evaluate_models(
        [context.load_model(spec) for spec in specs],
        config.eval,
        context.stage.dir,
        progress_for=progress_for,
        title=f"cai2 evaluation: {', '.join(labels)}",
        names=[f"{label} ({_short(spec)})" for label, spec in zip(labels, specs, strict=True)],
    )
    summary: dict[str, Any] = {"labels": dict(zip(labels, specs, strict=True)), "models": {}}
    metrics: dict[str, Any] = {"report_html": str(html_path)}
    for label, report in zip(labels, reports, strict=True):
        harm = report.harm.corrected or report.harm.raw
        row = {
            "harm_rate": harm.estimate,
            "harm_rate_raw": report.harm.raw.estimate,
            "harm_interval": harm.model_dump(mode="json"),
            "over_refusal": report.over_refusal.estimate,
            "helpfulness": _estimate(report.helpfulness),
            "asi": _estimate(report.asi.asi if report.asi is not None else None),
            "n_harmful": report.harm.raw.n,
            "n_benign": report.over_refusal.n,
        }
        summary["models"][label] = row
        for key in ("harm_rate", "harm_rate_raw", "over_refusal", "helpfulness", "asi"):
            metrics[f"{label}_{key}"] = row[key]
    if config.reduction_against is not None:
        base = reports[labels.index(config.reduction_against)]
        summary["relative_reduction"] = {}
        for label, report in zip(labels, reports, strict=True):
            if label == config.reduction_against:
                continue
            interval = relative_reduction(base, report, config.eval.bootstrap_resamples)
            summary["relative_reduction"][label] = (
                None if interval is None else interval.model_dump(mode="json")
            )
            metrics[f"{label}_reduction_vs_{config.reduction_against}"] = _estimate(interval)
    context.stage.write_json("summary.json", summary)
    return metrics


def summary_table(summary: dict[str, Any]) -> Any:
    """A rich table of an `evaluate` stage's ``summary.json``: one row per model."""
    from rich.table import Table

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f}%"

    table = Table(title="evaluation (held-out items)")
    for column in ("model", "harm rate [95% CI]", "over-refusal", "helpfulness", "ASI"):
        table.add_column(column)
    reductions = summary.get("relative_reduction") or {}
    for label, row in summary["models"].items():
        interval = row["harm_interval"]
        table.add_row(
            f"{label} ({summary['labels'][label]})",
            f"{pct(row['harm_rate'])} [{pct(interval['low'])}, {pct(interval['high'])}]",
            pct(row["over_refusal"]),
            pct(row["helpfulness"]),
            "—" if row["asi"] is None else f"{row['asi']:.3f}",
        )
    for label, interval in reductions.items():
        if interval is not None:
            table.caption = (
                f"harm reduction of {label}: {pct(interval['estimate'])} "
                f"[{pct(interval['low'])}, {pct(interval['high'])}]"
            )
    return table


def _short(spec: str, width: int = 40) -> str:
    """A model spec cut to its last ``width`` characters (run paths are long) for the HTML page."""
    return spec if len(spec) <= width else "…" + spec[-(width - 1) :]
