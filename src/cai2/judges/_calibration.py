"""Measure a judge against human labels: accuracy, Cohen's κ, AUROC, calibration error.

Sensitivity and specificity are reported too: a later prevalence estimate corrects a judge's raw
positive rate with them (Rogan & Gladen 1978: p = (q + spec − 1) / (sens + spec − 1)).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import Field
from rich.progress import Progress

from cai2.config import StrictModel
from cai2.errors import DataError
from cai2.judges._pyrit import LabelledResponse
from cai2.judges._types import Judge, JudgeItem, PrincipleLike


def expected_calibration_error(
    probabilities: Sequence[float], labels: Sequence[int], n_bins: int = 10
) -> float:
    """ECE with equal-width bins: Σ_b (n_b / n) · |mean label_b − mean p_b|.

    Bins are [0, 0.1), [0.1, 0.2), …, [0.9, 1.0] for ``n_bins=10``.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if len(p) == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.sum() / len(p) * abs(y[mask].mean() - p[mask].mean())
    return float(total)


def cohen_kappa(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Cohen's κ between two binary raters: (p_o − p_e) / (1 − p_e); 0 when p_e is 1."""
    from sklearn.metrics import cohen_kappa_score

    if len(set(predictions) | set(labels)) < 2:
        return 0.0
    return float(cohen_kappa_score(labels, predictions))


def auroc(probabilities: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve; ``None`` when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(labels, probabilities))


class CalibrationReport(StrictModel):
    """How well a judge agrees with human labels on one labelled set."""

    judge: str = Field(description="Name of the judge measured.")
    dataset: str = Field(description="Labelled set and split, e.g. `pyrit:objective:heldout`.")
    n: int = Field(description="Labelled replies in the set.")
    n_judged: int = Field(description="Replies the judge gave a probability for (not `None`).")
    threshold: float = Field(description="P(violation) at or above which a verdict counts as yes.")
    accuracy: float = Field(description="Share of judged replies where judge and human agree.")
    kappa: float = Field(description="Cohen's κ between the judge's yes/no and the human label.")
    auroc: float | None = Field(
        description="Area under the ROC curve of P(violation); `None` with one class only."
    )
    ece: float = Field(description="Expected calibration error over 10 equal-width bins.")
    brier: float = Field(description="Mean squared error of P(violation) against the label.")
    sensitivity: float | None = Field(
        description="True-positive rate: share of human-yes replies the judge calls yes."
    )
    specificity: float | None = Field(
        description="True-negative rate: share of human-no replies the judge calls no."
    )
    prevalence: float = Field(description="Share of human-yes labels among judged replies.")
    confusion: dict[str, int] = Field(description="Counts `tp`, `fp`, `tn`, `fn`.")
    per_category: dict[str, float] = Field(
        default_factory=dict, description="Accuracy within each harm category."
    )

    def to_json(self, path: Path | None = None) -> str:
        """The report as indented JSON, also written to ``path`` when given."""
        text = json.dumps(self.model_dump(mode="json"), indent=2)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n", encoding="utf-8")
        return text


def report_from_scores(
    judge: str,
    dataset: str,
    probabilities: Sequence[float | None],
    labels: Sequence[int],
    categories: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> CalibrationReport:
    """Metrics from already computed probabilities (``None`` = not judged) and 0/1 labels."""
    if len(probabilities) != len(labels):
        raise DataError(f"{len(probabilities)} probabilities but {len(labels)} labels")
    keep = [i for i, p in enumerate(probabilities) if p is not None and math.isfinite(p)]
    p = np.asarray([probabilities[i] for i in keep], dtype=np.float64)
    y = np.asarray([int(labels[i]) for i in keep], dtype=np.int64)
    yhat = (p >= threshold).astype(np.int64)
    tp = int(((yhat == 1) & (y == 1)).sum())
    fp = int(((yhat == 1) & (y == 0)).sum())
    tn = int(((yhat == 0) & (y == 0)).sum())
    fn = int(((yhat == 0) & (y == 1)).sum())
    n_judged = len(keep)
    per_category: dict[str, float] = {}
    if categories is not None:
        kept_categories = [categories[i] for i in keep]
        for category in sorted(set(kept_categories)):
            mask = np.asarray([c == category for c in kept_categories])
            per_category[category] = float((yhat[mask] == y[mask]).mean())
    return CalibrationReport(
        judge=judge,
        dataset=dataset,
        n=len(labels),
        n_judged=n_judged,
        threshold=threshold,
        accuracy=float((yhat == y).mean()) if n_judged else float("nan"),
        kappa=cohen_kappa(yhat.tolist(), y.tolist()) if n_judged else float("nan"),
        auroc=auroc(p.tolist(), y.tolist()),
        ece=expected_calibration_error(p.tolist(), y.tolist()),
        brier=float(((p - y) ** 2).mean()) if n_judged else float("nan"),
        sensitivity=tp / (tp + fn) if tp + fn else None,
        specificity=tn / (tn + fp) if tn + fp else None,
        prevalence=float(y.mean()) if n_judged else float("nan"),
        confusion={"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        per_category=per_category,
    )


def judge_probabilities(
    judge: Judge,
    rows: Sequence[LabelledResponse],
    principles: Sequence[PrincipleLike] = (),
    batch_size: int = 32,
    show_progress: bool = False,
) -> list[float | None]:
    """P(violation) of each labelled reply (its objective as the user turn), in batches."""
    out: list[float | None] = []
    with Progress(disable=not show_progress, transient=True) as progress:
        task = progress.add_task(f"judging with {judge.name}", total=len(rows))
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            items = [JudgeItem.of(row.objective, row.response) for row in chunk]
            out += [v.p_violation for v in judge.verdict_batch(items, principles)]
            progress.advance(task, len(chunk))
    return out


def calibrate(
    judge: Judge,
    rows: Sequence[LabelledResponse],
    *,
    dataset: str = "labelled",
    principles: Sequence[PrincipleLike] = (),
    threshold: float = 0.5,
    batch_size: int = 32,
    show_progress: bool = False,
) -> CalibrationReport:
    """Run ``judge`` over human-labelled replies and measure its agreement with the humans.

    Labels are read as yes/no at 0.5. ``None`` verdicts are left out of the metrics and counted in
    ``n - n_judged``.

    Raises:
        DataError: when ``rows`` is empty.
    """
    if not rows:
        raise DataError(f"no labelled replies to calibrate `{judge.name}` on ({dataset})")
    probabilities = judge_probabilities(judge, rows, principles, batch_size, show_progress)
    return report_from_scores(
        judge.name,
        dataset,
        probabilities,
        [int(row.positive) for row in rows],
        [row.category for row in rows],
        threshold,
    )
