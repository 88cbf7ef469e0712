"""Empirical mode: a Guard curve fitted to measured judge accuracies of models of different sizes.

Each measured judge contributes its accuracy on a balanced labelled set (for example from the judge
calibration harness) and its training compute. An accuracy ``a`` is read as the Elo win probability
of the judge, playing Guard, against the labelled set, which plays a Houdini fixed at the scale of
the smallest measured judge: the judge's domain Elo is ``400·log10(a / (1 − a))``. A weighted
least-squares line through these Elos, against orders of magnitude of compute counted from the
smallest judge, gives the Guard's domain-Elo slope per order of magnitude. The smallest judge is
the chain's trusted level 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from cai2.config import StrictModel, read_yaml
from cai2.errors import DataError
from cai2.simulation._elo import ELO_SCALE, EloCurve, OversightGame, elo_from_win_probability

# Chinchilla-optimal training (Hoffmann et al. 2022): C ≈ 6·N·D with D ≈ 20·N tokens.
CHINCHILLA_FLOPS_PER_PARAMETER_SQUARED = 120.0


class MeasuredJudge(StrictModel):
    """One judge's measured accuracy and size.

    ``report`` points at a JSON report of ``cai2 judge calibrate --out``; its ``judge``,
    ``accuracy`` and ``n_judged`` fill ``name``, ``accuracy`` and ``examples`` when not given.
    """

    report: Path | None = Field(
        None,
        description="Calibration report (JSON from `cai2 judge calibrate --out`) to read the "
        "accuracy from; relative paths are relative to the judges file.",
    )
    name: str = Field(min_length=1, description="Which judge / model was measured.")
    accuracy: float = Field(gt=0.0, lt=1.0, description="Accuracy on a balanced labelled set.")
    examples: int = Field(ge=1, description="Number of labelled examples behind `accuracy`.")
    log10_compute: float | None = Field(
        None, description="log10 of the model's training compute in FLOP."
    )
    parameters: float | None = Field(
        None,
        gt=0.0,
        description="Parameter count, used when `log10_compute` is missing: compute is taken as "
        "Chinchilla-optimal, 120·N² FLOP (Hoffmann et al. 2022: 6·N·D with D = 20·N).",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_report(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("report") is None:
            return data
        path = Path(data["report"])
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the calibration report {path}: {exc}") from exc
        if not isinstance(report, dict):
            raise ValueError(f"{path} is not a calibration report (expected a JSON object)")
        filled = dict(data)
        for field, key in (("name", "judge"), ("accuracy", "accuracy"), ("examples", "n_judged")):
            if field not in filled and key in report:
                filled[field] = report[key]
        return filled

    @model_validator(mode="after")
    def _has_size(self) -> MeasuredJudge:
        if (self.log10_compute is None) == (self.parameters is None):
            raise ValueError("give exactly one of `log10_compute` and `parameters`")
        return self

    @property
    def compute_log10(self) -> float:
        """log10 of the training compute in FLOP."""
        if self.log10_compute is not None:
            return self.log10_compute
        assert self.parameters is not None
        return float(np.log10(CHINCHILLA_FLOPS_PER_PARAMETER_SQUARED * self.parameters**2))


class EmpiricalGuardConfig(StrictModel):
    """Measured judges that replace the assumed Guard curve."""

    judges: list[MeasuredJudge] = Field(
        min_length=2, description="At least two judges of different compute."
    )
    houdini_slope: float = Field(
        1.0,
        description="Houdini domain Elo per general-Elo point (an assumption: measured judge "
        "accuracies say nothing about how evasion scales).",
    )


@dataclass(frozen=True)
class GuardFit:
    """Weighted least-squares line of judge domain Elo against orders of magnitude of compute.

    Attributes:
        intercept: Domain Elo at the smallest judge's compute.
        slope_per_order: Domain Elo gained per order of magnitude of compute.
        intercept_stderr: Standard error of ``intercept``.
        slope_stderr: Standard error of ``slope_per_order``.
        reference_log10_compute: log10 compute of the smallest judge (orders of magnitude = 0).
    """

    intercept: float
    slope_per_order: float
    intercept_stderr: float
    slope_stderr: float
    reference_log10_compute: float

    def game(
        self, elo_per_order: float, human_general_elo: float, houdini_slope: float
    ) -> OversightGame:
        """The oversight game at ``elo_per_order`` general Elo per order of magnitude."""
        guard_slope = self.slope_per_order / elo_per_order
        guard = EloCurve(
            slope=guard_slope, intercept=self.intercept - guard_slope * human_general_elo
        )
        houdini = EloCurve(slope=houdini_slope, intercept=-houdini_slope * human_general_elo)
        return OversightGame(guard=guard, houdini=houdini)


def load_empirical_config(path: str | Path) -> EmpiricalGuardConfig:
    """Read a judges file; ``report`` paths are resolved relative to it.

    Raises:
        ConfigError: with file, line and key for a missing report or an invalid entry.
    """
    document = read_yaml(path)
    judges = document.data.get("judges") if isinstance(document.data, dict) else None
    for judge in judges if isinstance(judges, list) else []:
        if isinstance(judge, dict) and isinstance(judge.get("report"), str):
            report = Path(judge["report"])
            if not report.is_absolute():
                judge["report"] = str(Path(path).parent / report)
    return document.validate(EmpiricalGuardConfig)


def fit_guard_curve(judges: list[MeasuredJudge]) -> GuardFit:
    """Fit the Guard's domain Elo against compute (weights from binomial variances).

    Raises:
        DataError: with fewer than two distinct compute values.
    """
    orders = np.array([judge.compute_log10 for judge in judges])
    if np.unique(orders).size < 2:
        raise DataError(
            "empirical mode needs judges of at least two different sizes; got "
            + ", ".join(judge.name for judge in judges)
        )
    reference = float(orders.min())
    x = orders - reference
    accuracy = np.array([judge.accuracy for judge in judges])
    examples = np.array([judge.examples for judge in judges], dtype=float)
    elo = elo_from_win_probability(accuracy)
    # Delta method: var(Elo) = (400 / ln 10)² · var(a) / (a(1 − a))², var(a) = a(1 − a) / n.
    variance = (ELO_SCALE / np.log(10.0)) ** 2 / (examples * accuracy * (1.0 - accuracy))
    weights = 1.0 / variance
    design = np.column_stack([np.ones_like(x), x])
    normal = design.T @ (design * weights[:, None])
    covariance = np.linalg.inv(normal)
    intercept, slope = covariance @ (design.T @ (weights * elo))
    return GuardFit(
        intercept=float(intercept),
        slope_per_order=float(slope),
        intercept_stderr=float(np.sqrt(covariance[0, 0])),
        slope_stderr=float(np.sqrt(covariance[1, 1])),
        reference_log10_compute=reference,
    )
