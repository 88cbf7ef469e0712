"""Ensembles of judges, calibrated on a calibration split.

Members' probabilities are combined on the log-odds scale, then mapped to a calibrated probability:

- ``stack``: a logistic regression over the members' log-odds (stacking; its own Platt scaling);
- ``mean`` + ``platt``: σ(a·z̄ + b) of the mean log-odds z̄ (Platt 1999);
- ``mean`` + ``temperature``: σ(z̄ / T) (Guo et al. 2017, arXiv:1706.04599);
- ``mean`` + ``none``: σ(z̄).

The parameters are fitted with :meth:`EnsembleJudge.fit` on labelled replies that no member
was trained on and that are not in the held-out evaluation split. A single member with ``platt`` or
``temperature`` calibration is a calibrated version of that judge.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from cai2.errors import DataError
from cai2.judges._pyrit import LabelledResponse
from cai2.judges._types import (
    Judge,
    JudgeBase,
    JudgeItem,
    PrincipleLike,
    Verdict,
    binary_entropy,
)

ENSEMBLE_FORMAT = "cai2.judge-ensemble/1"
_EPS = 1e-4


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds, with p clipped away from 0 and 1."""
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(q / (1.0 - q))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-z))


def fit_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """The temperature T > 0 that minimises the log-loss of σ(z / T) (bounded 1-D search)."""
    from scipy.optimize import minimize_scalar

    def loss(log_t: float) -> float:
        p = np.clip(sigmoid(z / np.exp(log_t)), 1e-12, 1 - 1e-12)
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())

    result = minimize_scalar(loss, bounds=(-5.0, 5.0), method="bounded")
    return float(np.exp(result.x))


class EnsembleJudge(JudgeBase):
    """Combines judges on the log-odds scale and calibrates the result.

    Args:
        members: The judges to combine (at least one).
        combine: ``stack`` (learned weights) or ``mean`` (equal weights).
        calibration: For ``mean``: ``platt``, ``temperature`` or ``none``; ignored by ``stack``.
        name: Name recorded in verdicts.
    """

    def __init__(
        self,
        members: Sequence[Judge],
        *,
        combine: Literal["stack", "mean"] = "stack",
        calibration: Literal["platt", "temperature", "none"] = "platt",
        name: str = "ensemble",
    ) -> None:
        if not members:
            raise DataError("an ensemble needs at least one member judge")
        self.members = list(members)
        self.combine = combine
        self.calibration = calibration
        self.name = name
        k = len(self.members)
        # Until fitted: equal weights, no rescaling (σ of the mean log-odds).
        self.weights = np.full(k, 1.0 / k)
        self.bias = 0.0
        self.temperature = 1.0
        self.fitted_on: str | None = None

    def _member_probabilities(
        self, items: Sequence[JudgeItem], principles: Sequence[PrincipleLike]
    ) -> tuple[np.ndarray, list[list[Verdict]]]:
        verdicts = [m.verdict_batch(items, principles) for m in self.members]
        p = np.array(
            [[np.nan if v.p_violation is None else v.p_violation for v in vs] for vs in verdicts],
            dtype=np.float64,
        ).T.reshape(len(items), len(self.members))
        return p, verdicts

    def _combined_logit(self, p: np.ndarray) -> np.ndarray:
        """Combined log-odds per row; a missing member counts as 0 (no evidence either way)."""
        z = logit(np.nan_to_num(p, nan=0.5))
        if self.combine == "stack":
            return z @ self.weights + self.bias
        known = ~np.isnan(p)
        counts = np.maximum(known.sum(axis=1), 1)
        mean = (z * known).sum(axis=1) / counts
        if self.calibration == "platt":
            return self.weights[0] * mean + self.bias
        if self.calibration == "temperature":
            return mean / self.temperature
        return mean

    def fit(
        self, rows: Sequence[LabelledResponse], principles: Sequence[PrincipleLike] = ()
    ) -> None:
        """Fit the combination / calibration on labelled replies (the calibration split)."""
        from sklearn.linear_model import LogisticRegression

        if not rows:
            raise DataError(f"no labelled replies to calibrate the ensemble `{self.name}` on")
        items = [JudgeItem.of(r.objective, r.response) for r in rows]
        p, _ = self._member_probabilities(items, principles)
        y = np.asarray([int(r.positive) for r in rows])
        if len(set(y.tolist())) < 2:
            raise DataError("calibrating an ensemble needs labelled replies of both classes")
        z = logit(np.nan_to_num(p, nan=0.5))
        if self.combine == "stack":
            model = LogisticRegression(C=1.0, max_iter=1000).fit(z, y)
            self.weights, self.bias = model.coef_[0].copy(), float(model.intercept_[0])
        elif self.calibration == "platt":
            known = ~np.isnan(p)
            mean = (z * known).sum(axis=1) / np.maximum(known.sum(axis=1), 1)
            model = LogisticRegression(C=1e6, max_iter=1000).fit(mean[:, None], y)
            self.weights = np.asarray([model.coef_[0][0]])
            self.bias = float(model.intercept_[0])
        elif self.calibration == "temperature":
            known = ~np.isnan(p)
            mean = (z * known).sum(axis=1) / np.maximum(known.sum(axis=1), 1)
            self.temperature = fit_temperature(mean, y)
        digest = hashlib.sha256()
        for row in sorted(rows, key=lambda r: r.key):
            digest.update(f"{row.key}:{row.label}\n".encode())
        self.fitted_on = digest.hexdigest()

    def verdict_batch(
        self, items: Sequence[JudgeItem], principles: Sequence[PrincipleLike] = ()
    ) -> list[Verdict]:
        """Combined, calibrated P(violation); ``None`` only when every member abstains."""
        if not items:
            return []
        p, member_verdicts = self._member_probabilities(items, principles)
        combined = sigmoid(self._combined_logit(p))
        out = []
        for i in range(len(items)):
            row = p[i]
            if np.isnan(row).all():
                out.append(
                    Verdict(judge=self.name, p_violation=None, rationale="every member abstained")
                )
                continue
            known = row[~np.isnan(row)]
            spread = float(known.std()) if len(known) > 1 else 0.0
            per_principle: dict[str, float | None] = {}
            for vs in member_verdicts:
                for pid, value in vs[i].per_principle.items():
                    if value is not None:
                        per_principle.setdefault(pid, value)
            parts = ", ".join(
                f"{m.name}={'—' if np.isnan(v) else f'{v:.2f}'}"
                for m, v in zip(self.members, row, strict=True)
            )
            pi = float(combined[i])
            out.append(
                Verdict(
                    judge=self.name,
                    p_violation=pi,
                    per_principle=per_principle,
                    uncertainty=binary_entropy(pi) + spread,
                    rationale=f"{self.combine}/{self.calibration} of {parts}",
                )
            )
        return out

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Write the fitted parameters (not the members) as JSON."""
        payload = {
            "format": ENSEMBLE_FORMAT,
            "members": [m.name for m in self.members],
            "combine": self.combine,
            "calibration": self.calibration,
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "temperature": self.temperature,
            "fitted_on_sha256": self.fitted_on,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path, members: Sequence[Judge], name: str = "ensemble") -> EnsembleJudge:
        """Rebuild an ensemble saved by :meth:`save` around ``members`` (same names, same order).

        Raises:
            DataError: when the file is missing or malformed, or the members do not match.
        """
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: cannot read the ensemble file ({exc})") from exc
        if payload.get("format") != ENSEMBLE_FORMAT:
            raise DataError(f"{path}: not a cai2 ensemble (format {payload.get('format')!r})")
        names = [m.name for m in members]
        if payload["members"] != names:
            raise DataError(
                f"{path}: fitted for members {payload['members']}, but got {names}; refit it"
            )
        judge = cls(
            members, combine=payload["combine"], calibration=payload["calibration"], name=name
        )
        judge.weights = np.asarray(payload["weights"], dtype=np.float64)
        judge.bias = float(payload["bias"])
        judge.temperature = float(payload["temperature"])
        judge.fitted_on = payload.get("fitted_on_sha256")
        return judge
