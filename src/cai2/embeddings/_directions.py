"""Principle directions in the residual stream: training, layer choice, calibration, files.

For each principle, replies that follow it (compliant) and replies that break it (violating) are
run through the model and their hidden states averaged over the reply's tokens. Two directions are
fitted on the ``train`` split at every candidate layer:

- ``mean_diff``: the difference of the class means (violating − compliant), normalised;
- ``probe``: the weights of an L2-regularised logistic regression (scikit-learn) on the hidden
  states, mapped back to the raw activation space and normalised.

The layer with the highest mean ``val`` AUROC of the scoring method over all principles is kept;
each principle's score there (the projection on its direction) is then Platt-scaled on ``val`` into
P(violation). Steering uses the ``mean_diff`` direction scaled by the distance between the means.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cai2.embeddings._activations import reply_activations, require_local_model
from cai2.embeddings._data import PrincipleExample, check_both_sides, split_counts, split_examples
from cai2.errors import ConfigError, DataError, ModelError

Method = Literal["probe", "mean_diff"]
METHODS: tuple[Method, ...] = ("probe", "mean_diff")
FORMAT_VERSION = 1
PROBE_C = 0.1
"""Inverse L2 strength of the logistic probe on standardised activations (fixed, not tuned)."""


@dataclass
class PrincipleDirection:
    """The directions of one principle at the chosen layer and their calibration."""

    principle: str
    statement: str
    directions: dict[str, np.ndarray]
    """Unit vector per method (``probe``, ``mean_diff``)."""
    offsets: dict[str, float]
    """Score = direction · h − offset per method (0 at the decision boundary)."""
    steer_scale: float
    """Distance between the class means along ``mean_diff``: one unit of steering strength."""
    platt: tuple[float, float]
    """(a, b) with P(violation) = sigmoid(a · score + b) for the scoring method."""
    n_train: dict[str, int]
    val_auroc: dict[str, float | None]

    def score(self, activations: np.ndarray, method: Method) -> np.ndarray:
        """Signed projection of ``activations`` (n, hidden) on the direction of ``method``."""
        return np.asarray(activations @ self.directions[method] - self.offsets[method])

    def probability(self, activations: np.ndarray, method: Method) -> np.ndarray:
        """Calibrated P(violation) for each row of ``activations``."""
        a, b = self.platt
        return _sigmoid(a * self.score(activations, method) + b)


@dataclass
class ConstitutionalEmbeddings:
    """Principle directions learned on one model, with where they came from."""

    constitution: str
    constitution_version: str
    constitution_hash: str
    """sha256 of the id and statement of every principle used, so a changed rule is noticed."""
    model_spec: str
    hidden_size: int
    num_layers: int
    layer: int
    """Hidden-state layer (1 … num_layers): the output of decoder block ``layer - 1``."""
    method: Method
    """Which direction scores violations (the judge); steering always uses ``mean_diff``."""
    principles: dict[str, PrincipleDirection]
    layer_val_auroc: dict[int, float] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    @property
    def principle_ids(self) -> list[str]:
        """Ids of the principles with a direction, in training order."""
        return list(self.principles)

    def check_model(self, model: Any) -> None:
        """Raise :class:`ModelError` unless ``model`` has this file's width and depth."""
        config = require_local_model(model).model.config
        hidden, layers = int(config.hidden_size), int(config.num_hidden_layers)
        if (hidden, layers) != (self.hidden_size, self.num_layers):
            raise ModelError(
                f"these constitutional embeddings were learned on `{self.model_spec}` "
                f"(hidden size {self.hidden_size}, {self.num_layers} layers) but "
                f"`{getattr(model, 'spec', '?')}` has hidden size {hidden} and {layers} layers; "
                f"train them for this model with `cai2 embed train --model ...`"
            )

    def scores(self, activations: np.ndarray) -> dict[str, np.ndarray]:
        """Raw violation score per principle for activations at :attr:`layer`."""
        return {p: d.score(activations, self.method) for p, d in self.principles.items()}

    def probabilities(self, activations: np.ndarray) -> dict[str, np.ndarray]:
        """Calibrated P(violation) per principle for activations at :attr:`layer`."""
        return {p: d.probability(activations, self.method) for p, d in self.principles.items()}

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.npz`` vectors) and its ``.json`` metadata beside it; returns path."""
        from cai2.store import atomic_write_json

        target = Path(path)
        if target.suffix != ".npz":
            target = target.with_suffix(".npz")
        target.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        meta_principles = []
        for index, direction in enumerate(self.principles.values()):
            for method, vector in direction.directions.items():
                arrays[f"p{index}_{method}"] = vector.astype(np.float32)
            record = asdict(direction)
            record.pop("directions")
            record["array_index"] = index
            meta_principles.append(record)
        temporary = target.with_name(target.name + ".tmp.npz")
        np.savez(temporary, **arrays)  # type: ignore[arg-type]
        temporary.replace(target)
        meta = {
            "format_version": FORMAT_VERSION,
            "constitution": self.constitution,
            "constitution_version": self.constitution_version,
            "constitution_hash": self.constitution_hash,
            "model_spec": self.model_spec,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "layer": self.layer,
            "method": self.method,
            "layer_val_auroc": {str(k): v for k, v in self.layer_val_auroc.items()},
            "counts": self.counts,
            "created": self.created,
            "principles": meta_principles,
        }
        atomic_write_json(meta_path(target), meta)
        return target

    @classmethod
    def load(cls, path: str | Path, model: Any = None) -> ConstitutionalEmbeddings:
        """Read a file written by :meth:`save`; with ``model``, check it matches.

        Raises:
            DataError: when a file is missing or malformed.
            ModelError: when ``model`` differs in hidden size or depth from the training model.
        """
        target = Path(path)
        meta_file = meta_path(target)
        if not target.is_file() or not meta_file.is_file():
            raise DataError(
                f"{target}: constitutional embeddings not found (need {target.name} and "
                f"{meta_file.name}); create them with `cai2 embed train`"
            )
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            arrays = np.load(target, allow_pickle=False)
            principles: dict[str, PrincipleDirection] = {}
            for record in meta["principles"]:
                index = record.pop("array_index")
                directions: dict[str, np.ndarray] = {
                    m: np.asarray(arrays[f"p{index}_{m}"], dtype=np.float32) for m in METHODS
                }
                record["platt"] = tuple(record["platt"])
                principles[record["principle"]] = PrincipleDirection(
                    directions=directions, **record
                )
            embeddings = cls(
                constitution=meta["constitution"],
                constitution_version=meta["constitution_version"],
                constitution_hash=meta["constitution_hash"],
                model_spec=meta["model_spec"],
                hidden_size=int(meta["hidden_size"]),
                num_layers=int(meta["num_layers"]),
                layer=int(meta["layer"]),
                method=meta["method"],
                principles=principles,
                layer_val_auroc={int(k): v for k, v in meta["layer_val_auroc"].items()},
                counts=meta.get("counts", {}),
                created=meta.get("created", ""),
            )
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise DataError(f"{target}: malformed constitutional embeddings ({exc})") from exc
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"{meta_file}: format version {meta.get('format_version')} is not "
                f"{FORMAT_VERSION}; retrain with `cai2 embed train`"
            )
        for pid, direction in principles.items():
            for method, vector in direction.directions.items():
                if vector.shape != (embeddings.hidden_size,):
                    raise DataError(
                        f"{target}: `{pid}` {method} vector has shape {vector.shape}, expected "
                        f"({embeddings.hidden_size},)"
                    )
        if model is not None:
            embeddings.check_model(model)
        return embeddings


def meta_path(path: str | Path) -> Path:
    """The JSON metadata file that goes with a ``.npz`` file of directions."""
    return Path(path).with_suffix(".json")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0))))


def auroc(labels: Sequence[bool] | np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve, or ``None`` when only one class is present."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, dtype=int)
    if len(set(y.tolist())) < 2:
        return None
    return float(roc_auc_score(y, scores))


def constitution_principles(name: str, ids: Sequence[str]) -> tuple[str, str, dict[str, str]]:
    """(name, version, {id: statement}) of ``ids`` in a constitution (built-in name or path).

    Raises:
        ConfigError: when a principle id is not in the constitution.
    """
    from cai2.constitution import load_constitution

    flat = load_constitution(name).flatten()
    statements = {principle.id: principle.statement for _, principle, _ in flat.principles()}
    missing = [pid for pid in ids if pid not in statements]
    if missing:
        raise ConfigError(
            f"principle(s) {', '.join(missing)} are not in the constitution `{flat.name}`; "
            f"label examples with ids from it (see `cai2 constitution show {name}`)",
            key="principle",
        )
    return flat.name, flat.version, {pid: statements[pid] for pid in ids}


def statements_hash(statements: dict[str, str]) -> str:
    """sha256 over sorted ``id\\tstatement`` lines."""
    text = "\n".join(f"{pid}\t{statements[pid]}" for pid in sorted(statements))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fit_directions(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[dict[str, Any], float]:
    """Unit directions and offsets per method on (x, y), and the distance between class means."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    mean_v, mean_c = x[y == 1].mean(axis=0), x[y == 0].mean(axis=0)
    diff = mean_v - mean_c
    distance = float(np.linalg.norm(diff))
    unit = diff / max(distance, 1e-12)
    directions = {"mean_diff": unit}
    offsets = {"mean_diff": float(unit @ (mean_v + mean_c) / 2.0)}
    scaler = StandardScaler().fit(x)
    probe = LogisticRegression(C=PROBE_C, max_iter=2000, random_state=seed)
    probe.fit(scaler.transform(x), y)
    # w·(x − μ)/σ + b  ==  (w/σ)·x + (b − Σ w μ/σ): the probe as a direction in raw space.
    raw = probe.coef_[0] / scaler.scale_
    bias = float(probe.intercept_[0] - raw @ scaler.mean_)
    norm = float(np.linalg.norm(raw))
    directions["probe"] = raw / max(norm, 1e-12)
    offsets["probe"] = -bias / max(norm, 1e-12)
    return {"directions": directions, "offsets": offsets}, distance


def _platt(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling (a, b) of raw scores; identity-like when one class is missing."""
    from sklearn.linear_model import LogisticRegression

    if len(set(labels.tolist())) < 2:
        return 1.0, 0.0
    spread = float(np.std(scores)) or 1.0
    model = LogisticRegression(C=1.0).fit((scores / spread)[:, None], labels)
    return float(model.coef_[0, 0]) / spread, float(model.intercept_[0])


@dataclass(frozen=True)
class TrainingReport:
    """What training measured: validation AUROC per layer, and per principle at the chosen one."""

    layer: int
    method: Method
    layer_val_auroc: dict[int, float]
    val_auroc: dict[str, dict[str, float | None]]
    counts: dict[str, Any]
    seconds: float


def train_embeddings(
    model: Any,
    examples: Sequence[PrincipleExample],
    *,
    constitution: str = "cai-2.0",
    method: Method = "probe",
    layers: Sequence[int] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ConstitutionalEmbeddings, TrainingReport]:
    """Learn one direction per principle of ``examples`` on ``model`` (see the module docstring).

    Args:
        model: An ``hf`` chat model.
        examples: Labelled examples; only their ``train`` and ``val`` splits are used.
        constitution: Built-in name or path of the constitution the principle ids come from.
        method: Direction that scores violations (``probe`` or ``mean_diff``).
        layers: Candidate hidden-state layers (``k`` = output of decoder block ``k - 1``); default
            every block's output, 1 … ``num_layers``.
        seed: Seed of the logistic probe.
        progress: Called as ``progress(done, total)`` while activations are computed.

    Raises:
        ConfigError: for an unknown method, a layer out of range or principle ids not in the
            constitution. DataError: when a split lacks one side of a principle.
    """
    import time

    if method not in METHODS:
        raise ConfigError(f"`method` must be one of {', '.join(METHODS)}; got `{method}`")
    started = time.perf_counter()
    require_local_model(model)
    config = model.model.config
    num_layers, hidden = int(config.num_hidden_layers), int(config.hidden_size)
    candidates = list(layers) if layers else list(range(1, num_layers + 1))
    bad = [layer for layer in candidates if not 1 <= layer <= num_layers]
    if bad:
        raise ConfigError(
            f"`layers` {bad} out of range; use 1 … {num_layers} (hidden-state layers after each "
            f"decoder block)",
            key="layers",
        )
    ids = list(dict.fromkeys(e.principle for e in examples))
    name, version, statements = constitution_principles(constitution, ids)
    splits = split_examples(examples)
    check_both_sides(splits["train"], "train split")
    check_both_sides(splits["val"], "val split")
    used = splits["train"] + splits["val"]
    activations = reply_activations(
        model, [(e.conversation, e.response) for e in used], candidates, progress=progress
    )
    n_train = len(splits["train"])
    layer_scores: dict[int, float] = {}
    fitted: dict[int, dict[str, tuple[dict[str, Any], float, dict[str, float | None]]]] = {}
    for slot, layer in enumerate(candidates):
        fitted[layer] = {}
        for pid in ids:
            train_rows = [i for i, e in enumerate(splits["train"]) if e.principle == pid]
            val_rows = [n_train + i for i, e in enumerate(splits["val"]) if e.principle == pid]
            x = activations[slot, train_rows]
            y = np.array([used[i].violates for i in train_rows], dtype=int)
            parts, distance = _fit_directions(x, y, seed)
            xv = activations[slot, val_rows]
            yv = np.array([used[i].violates for i in val_rows], dtype=int)
            val: dict[str, float | None] = {
                m: auroc(yv, xv @ parts["directions"][m] - parts["offsets"][m]) for m in METHODS
            }
            fitted[layer][pid] = (parts, distance, val)
        chosen_scores = [v[2][method] for v in fitted[layer].values()]
        layer_scores[layer] = float(np.mean([s for s in chosen_scores if s is not None] or [0.5]))

    def rank(layer: int) -> tuple[float, float, int]:
        other = "mean_diff" if method == "probe" else "probe"
        other_scores = [v[2][other] or 0.5 for v in fitted[layer].values()]
        # Highest mean val AUROC; ties go to the other method's AUROC, then the earlier layer.
        return (layer_scores[layer], float(np.mean(other_scores)), -layer)

    best = max(candidates, key=rank)
    slot = candidates.index(best)
    principles: dict[str, PrincipleDirection] = {}
    for pid in ids:
        parts, distance, val = fitted[best][pid]
        val_rows = [n_train + i for i, e in enumerate(splits["val"]) if e.principle == pid]
        yv = np.array([used[i].violates for i in val_rows], dtype=int)
        raw = activations[slot, val_rows] @ parts["directions"][method] - parts["offsets"][method]
        train_labels = [e.violates for e in splits["train"] if e.principle == pid]
        principles[pid] = PrincipleDirection(
            principle=pid,
            statement=statements[pid],
            directions={m: v.astype(np.float32) for m, v in parts["directions"].items()},
            offsets=parts["offsets"],
            steer_scale=distance,
            platt=_platt(raw, yv),
            n_train={
                "compliant": train_labels.count(False),
                "violating": train_labels.count(True),
            },
            val_auroc=val,
        )
    counts = split_counts(examples)
    embeddings = ConstitutionalEmbeddings(
        constitution=name,
        constitution_version=version,
        constitution_hash=statements_hash(statements),
        model_spec=str(getattr(model, "spec", "?")),
        hidden_size=hidden,
        num_layers=num_layers,
        layer=best,
        method=method,
        principles=principles,
        layer_val_auroc=layer_scores,
        counts=counts,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    report = TrainingReport(
        layer=best,
        method=method,
        layer_val_auroc=layer_scores,
        val_auroc={pid: principles[pid].val_auroc for pid in ids},
        counts=counts,
        seconds=time.perf_counter() - started,
    )
    return embeddings, report


@dataclass(frozen=True)
class PrincipleEvaluation:
    """Held-out measures of one principle's direction."""

    principle: str
    n_compliant: int
    n_violating: int
    auroc: float | None
    """AUROC of the scoring method's projection."""
    auroc_by_method: dict[str, float | None]
    brier: float | None
    """Mean squared error of the calibrated P(violation)."""
    accuracy: float | None
    """Share right at P(violation) ≥ 0.5."""


def evaluate_embeddings(
    embeddings: ConstitutionalEmbeddings,
    model: Any,
    examples: Sequence[PrincipleExample],
    progress: Callable[[int, int], None] | None = None,
) -> list[PrincipleEvaluation]:
    """AUROC, Brier score and accuracy per principle on ``examples`` (pass the ``test`` split).

    Examples of principles without a direction are skipped.

    Raises:
        ModelError: when ``model`` does not match the embeddings.
        DataError: when no example has a principle with a direction.
    """
    embeddings.check_model(model)
    kept = [e for e in examples if e.principle in embeddings.principles]
    if not kept:
        raise DataError(
            "no examples of the principles these embeddings know "
            f"({', '.join(embeddings.principle_ids)})"
        )
    activations = reply_activations(
        model, [(e.conversation, e.response) for e in kept], [embeddings.layer], progress=progress
    )[0]
    results = []
    for pid, direction in embeddings.principles.items():
        rows = [i for i, e in enumerate(kept) if e.principle == pid]
        if not rows:
            continue
        x = activations[rows]
        y = np.array([kept[i].violates for i in rows], dtype=int)
        p = direction.probability(x, embeddings.method)
        results.append(
            PrincipleEvaluation(
                principle=pid,
                n_compliant=int((y == 0).sum()),
                n_violating=int((y == 1).sum()),
                auroc=auroc(y, direction.score(x, embeddings.method)),
                auroc_by_method={m: auroc(y, direction.score(x, m)) for m in METHODS},
                brier=float(np.mean((p - y) ** 2)),
                accuracy=float(np.mean((p >= 0.5) == (y == 1))),
            )
        )
    return results


def summary_auroc(results: Sequence[PrincipleEvaluation]) -> tuple[float | None, float | None]:
    """(min, mean) AUROC over principles that could be measured."""
    values = [r.auroc for r in results if r.auroc is not None and not math.isnan(r.auroc)]
    if not values:
        return None, None
    return min(values), float(np.mean(values))
