"""The fixed data splits for judge training and evaluation, and the registered judge factories.

PyRIT's human-labelled ``objective`` set is split once, by a seeded hash of each reply:

- ``heldout`` (30%): evaluation only — never used for training, model selection, thresholds or
  temperatures;
- ``calibration`` (20% of the rest): fits ensemble weights and Platt / temperature scaling;
- ``fit`` (the rest) plus extra labelled replies from PyRIT's ``harm`` set (with every reply that is
  in ``heldout`` or ``calibration`` removed): trains the heads; their regularisation is chosen by
  cross-validation inside ``fit``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cai2.errors import ConfigError
from cai2.home import cai2_home
from cai2.judges._ensemble import EnsembleJudge
from cai2.judges._heads import EmbeddingHeadJudge, HiddenStateHeadJudge, TrainedHeadJudge
from cai2.judges._llm import LLMJudge
from cai2.judges._pyrit import (
    LabelledResponse,
    ScorerEvalName,
    heldout_split,
    load_pyrit_scorer_eval,
    training_pool,
)
from cai2.judges._refusal import RefusalJudge
from cai2.judges._types import Judge
from cai2.registry import Registry

HELDOUT_FRACTION = 0.3
CALIBRATION_FRACTION = 0.2
DEFAULT_EXTRA: tuple[ScorerEvalName, ...] = ("harm",)

JUDGES: Registry[Judge] = Registry("judges")
"""Judges by name: ``refusal``, ``embedding-head``, ``hidden-head``, ``llm-mc``, ``ensemble``."""


@dataclass(frozen=True)
class JudgeSplits:
    """Labelled replies for training (``fit``), calibration and held-out evaluation."""

    fit: list[LabelledResponse]
    calibration: list[LabelledResponse]
    heldout: list[LabelledResponse]
    extra: list[LabelledResponse]

    @property
    def training(self) -> list[LabelledResponse]:
        """What the heads are trained on: ``fit`` plus the extra replies."""
        return self.fit + self.extra


def objective_splits(seed: int = 0, extra: Sequence[ScorerEvalName] = DEFAULT_EXTRA) -> JudgeSplits:
    """The fixed splits of PyRIT's ``objective`` set (see the module docstring)."""
    rows = load_pyrit_scorer_eval("objective")
    training, heldout = heldout_split(rows, HELDOUT_FRACTION, seed)
    fit, calibration = heldout_split(training, CALIBRATION_FRACTION, seed + 1)
    extra_rows = training_pool([*heldout, *calibration], extra) if extra else []
    return JudgeSplits(fit, calibration, heldout, extra_rows)


def default_path(name: str) -> Path:
    """Where ``cai2 judge train`` saves the judge ``name`` (under ``$CAI2_HOME/judges``)."""
    suffix = ".json" if name == "ensemble" else ".npz"
    return cai2_home() / "judges" / f"{name}{suffix}"


def train_head(
    judge: TrainedHeadJudge,
    path: Path | None = None,
    seed: int = 0,
    extra: Sequence[ScorerEvalName] = DEFAULT_EXTRA,
) -> Path:
    """Train ``judge`` on the ``fit`` split (+ extra replies) and save it."""
    splits = objective_splits(seed, extra)
    judge.fit(splits.training, seed=seed)
    judge.meta["splits"] = {"seed": seed, "extra": list(extra)}
    return judge.save(path or default_path(judge.kind))


def _trained(judge: TrainedHeadJudge, path: str | Path | None, train_if_missing: bool) -> Judge:
    target = Path(path) if path is not None else default_path(judge.kind)
    if not target.exists() and train_if_missing and path is None:
        train_head(judge, target)
    else:
        judge.load_head(target)
    return judge


def embedding_head(path: str | Path | None = None, train_if_missing: bool = True) -> Judge:
    """The MiniLM-embedding head from ``path`` (default: the cached one, trained on first use)."""
    return _trained(EmbeddingHeadJudge(), path, train_if_missing)


def hidden_head(
    model: str = "hf:smollm2-135m",
    layer: int = -1,
    path: str | Path | None = None,
    train_if_missing: bool = True,
) -> Judge:
    """The hidden-state head on ``model``; trained on first use when no file is given."""
    return _trained(HiddenStateHeadJudge(model, layer), path, train_if_missing)


def llm_mc(model: str = "hf:smollm2-135m", chain_of_thought: bool = False) -> Judge:
    """The multiple-choice judge over ``model`` (any backend spec)."""
    return LLMJudge(model, chain_of_thought=chain_of_thought)


def ensemble(
    members: Sequence[str | Judge] = ("refusal", "embedding-head"),
    path: str | Path | None = None,
    combine: Literal["stack", "mean"] = "stack",
    calibration: Literal["platt", "temperature", "none"] = "platt",
    fit_if_missing: bool = True,
) -> Judge:
    """A calibrated ensemble of registered judges (names) or judge objects.

    Loads the fitted parameters from ``path`` (default: the cached file); when there is none, fits
    them on the calibration split and caches them.
    """
    judges = [JUDGES.get(m)() if isinstance(m, str) else m for m in members]
    target = Path(path) if path is not None else default_path("ensemble")
    if target.exists():
        return EnsembleJudge.load(target, judges)
    if not fit_if_missing or path is not None:
        raise ConfigError(
            f"no fitted ensemble at {target}; run `cai2 judge train --judge ensemble`"
        )
    judge = EnsembleJudge(judges, combine=combine, calibration=calibration)
    judge.fit(objective_splits().calibration)
    judge.save(target)
    return judge


def gated_ensemble(cap: float = 0.05, **options: Any) -> Judge:
    """The ``ensemble`` judge (built with ``options``) behind a :class:`RelevanceGate`."""
    from cai2.judges._relevance import RelevanceGate

    return RelevanceGate(ensemble(**options), cap=cap, name="gated-ensemble")


def embedding_probe(path: str | Path | None = None, model: Any = None) -> Judge:
    """Constitutional-embedding probes (``cai2 embed train``) as a judge: one P(violation) each.

    Args:
        path: The ``.npz`` written by ``cai2 embed train --out``; required.
        model: The model to read hidden states from: a spec or a loaded `hf` model (default: the
            spec the file records).

    Raises:
        ConfigError: without ``path``.
        DataError: when the file (or its ``.json`` beside it) is missing or malformed.
    """
    if path is None:
        raise ConfigError(
            "the `embedding-probe` judge needs the directions file: options {path: <file.npz>} "
            "(write one with `cai2 embed train --out directions.npz`)"
        )
    from cai2.embeddings import EmbeddingProbeJudge  # cai2.embeddings imports cai2.judges

    return EmbeddingProbeJudge(path, model)


def build_judge(name: str, **options: Any) -> Judge:
    """The registered judge ``name`` built with ``options``."""
    return JUDGES.get(name)(**options)


JUDGES.register("refusal", RefusalJudge)
JUDGES.register("embedding-head", embedding_head)
JUDGES.register("hidden-head", hidden_head)
JUDGES.register("llm-mc", llm_mc)
JUDGES.register("ensemble", ensemble)
JUDGES.register("gated-ensemble", gated_ensemble)
JUDGES.register("embedding-probe", embedding_probe)
