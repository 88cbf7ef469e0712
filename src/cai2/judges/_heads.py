"""Trained judges: a logistic-regression head on sentence embeddings or on a model's hidden states.

The embedded 135M model cannot judge itself (an A/B log-prob question to it is at chance), so the
embedded stack gets its judge by training a small classifier on labelled replies. The head is a
scikit-learn standardisation + ``LogisticRegressionCV`` whose regularisation is chosen by stratified
cross-validation on the training data only. It is saved as an ``.npz`` of plain arrays plus a JSON
metadata string (loaded with ``allow_pickle=False``), together with the sha256 of the training data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from cai2.errors import DataError, ModelError
from cai2.judges._pyrit import LabelledResponse
from cai2.judges._refusal import refusal_features
from cai2.judges._types import JudgeBase, JudgeItem, PrincipleLike, Verdict
from cai2.models._types import Conversation, LocalChatModel, Message

HEAD_FORMAT = "cai2.judge-head/1"
FeaturePart = Literal["response", "objective", "product", "absdiff", "cosine", "refusal"]
DEFAULT_EMBEDDING_PARTS: tuple[FeaturePart, ...] = ("response", "refusal")
Encoder = Callable[[Sequence[str]], np.ndarray]


def training_data_sha256(rows: Sequence[LabelledResponse]) -> str:
    """sha256 of the (objective, reply, label) triples, order-independent."""
    digest = hashlib.sha256()
    for line in sorted(
        json.dumps([r.objective, r.response, round(r.label, 6)], ensure_ascii=False) for r in rows
    ):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


class LogisticHead:
    """Standardised features → logistic regression, with C chosen by cross-validation.

    Soft labels enter as the nearer hard label weighted by its certainty ``|2y − 1|`` (a label 0.5
    carries no weight).
    """

    def __init__(
        self,
        mean: np.ndarray,
        scale: np.ndarray,
        coef: np.ndarray,
        intercept: float,
        regularisation: float,
    ) -> None:
        self.mean = mean
        self.scale = scale
        self.coef = coef
        self.intercept = intercept
        self.regularisation = regularisation

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        labels: Sequence[float],
        *,
        folds: int = 5,
        seed: int = 0,
        inverse_regularisation: Sequence[float] | None = None,
    ) -> LogisticHead:
        """Fit on ``features`` (n, d) and labels in [0, 1].

        Raises:
            DataError: when only one class remains after weighting.
        """
        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.model_selection import StratifiedKFold

        y_soft = np.asarray(labels, dtype=np.float64)
        y = (y_soft >= 0.5).astype(np.int64)
        weight = np.abs(2.0 * y_soft - 1.0)
        keep = weight > 0
        x, y, weight = features[keep], y[keep], weight[keep]
        counts = np.bincount(y, minlength=2)
        if counts.min() < 2:
            raise DataError(
                "a judge head needs at least 2 labelled examples of each class; "
                f"got {counts.tolist()}"
            )
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-12] = 1.0
        grid = (
            list(inverse_regularisation)
            if inverse_regularisation is not None
            else np.logspace(-4, 1, 11).tolist()
        )
        model = LogisticRegressionCV(
            Cs=grid,
            cv=StratifiedKFold(min(folds, int(counts.min())), shuffle=True, random_state=seed),
            scoring="neg_log_loss",
            max_iter=2000,
            l1_ratios=(0.0,),
            use_legacy_attributes=False,
        )
        model.fit((x - mean) / scale, y, sample_weight=weight)
        return cls(mean, scale, model.coef_[0].copy(), float(model.intercept_[0]), float(model.C_))

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Log-odds of the positive class for each row."""
        return ((features - self.mean) / self.scale) @ self.coef + self.intercept

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """P(positive) for each row."""
        return 1.0 / (1.0 + np.exp(-self.logits(features)))


class TrainedHeadJudge(JudgeBase):
    """A judge whose P(violation) is a logistic head over features of (objective, reply)."""

    kind: ClassVar[str] = "head"

    def __init__(self, head: LogisticHead | None = None, name: str | None = None) -> None:
        self.head = head
        self.name = name or self.kind
        self.meta: dict[str, Any] = {}

    # -- features ---------------------------------------------------------------------------
    def features(self, items: Sequence[JudgeItem]) -> np.ndarray:
        """Feature matrix (n, d) of the items."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Settings that define the features, stored with the head and checked on load."""
        return {}

    # -- training and judging ----------------------------------------------------------------
    def fit(self, rows: Sequence[LabelledResponse], *, folds: int = 5, seed: int = 0) -> None:
        """Train the head on labelled replies (label 1 = violation)."""
        if not rows:
            raise DataError(f"no labelled replies to train `{self.name}` on")
        x = self.features([JudgeItem.of(r.objective, r.response) for r in rows])
        self.head = LogisticHead.fit(x, [r.label for r in rows], folds=folds, seed=seed)
        self.meta = {
            "n_train": len(rows),
            "training_data_sha256": training_data_sha256(rows),
            "regularisation_C": self.head.regularisation,
        }

    def verdict_batch(
        self, items: Sequence[JudgeItem], principles: Sequence[PrincipleLike] = ()
    ) -> list[Verdict]:
        """P(violation) of each reply; principles are ignored (the head judges one concept)."""
        if self.head is None:
            raise ModelError(
                f"judge `{self.name}` has no trained head; call `.fit(rows)`, load one with "
                f"`.load(path)`, or run `cai2 judge train --judge {self.kind}`"
            )
        if not items:
            return []
        p = self.head.probabilities(self.features(items))
        return [
            Verdict(
                judge=self.name,
                p_violation=float(np.clip(pi, 0.0, 1.0)),
                rationale=f"{self.kind} head: P(violation) = {pi:.3f}",
            )
            for pi in p
        ]

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        """Write the head as ``.npz`` (plain arrays and a JSON string; no pickle)."""
        if self.head is None:
            raise ModelError(f"judge `{self.name}` has no trained head to save")
        meta = {"format": HEAD_FORMAT, "kind": self.kind, "config": self.config(), **self.meta}
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez(
                handle,
                mean=self.head.mean,
                scale=self.head.scale,
                coef=self.head.coef,
                intercept=np.asarray([self.head.intercept]),
                regularisation=np.asarray([self.head.regularisation]),
                meta=np.asarray(json.dumps(meta, sort_keys=True)),
            )
        return path

    def load_head(self, path: Path) -> None:
        """Load a head saved by :meth:`save` into this judge.

        Raises:
            DataError: when the file is missing, not a cai2 head, or has other features.
        """
        if not path.exists():
            raise DataError(
                f"no judge head at {path}; train one with `cai2 judge train --judge {self.kind}`"
            )
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            meta = json.loads(str(arrays["meta"]))
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: not a cai2 judge head ({exc}); retrain it") from exc
        if meta.get("format") != HEAD_FORMAT or meta.get("kind") != self.kind:
            raise DataError(
                f"{path}: holds a `{meta.get('kind')}` head in format `{meta.get('format')}`, "
                f"not a `{self.kind}` head in `{HEAD_FORMAT}`"
            )
        if meta.get("config") != self.config():
            raise DataError(
                f"{path}: trained with features {meta.get('config')}, but this judge uses "
                f"{self.config()}; retrain it or construct the judge with the same settings"
            )
        self.head = LogisticHead(
            arrays["mean"],
            arrays["scale"],
            arrays["coef"],
            float(arrays["intercept"][0]),
            float(arrays["regularisation"][0]),
        )
        self.meta = {k: v for k, v in meta.items() if k not in {"format", "kind", "config"}}


def _conversation(item: JudgeItem) -> Conversation:
    return [*item.conversation, Message(role="assistant", content=item.response)]


class EmbeddingHeadJudge(TrainedHeadJudge):
    """Logistic head on sentence embeddings (all-MiniLM-L6-v2 by default) of objective and reply.

    Args:
        encoder: Maps texts to L2-normalised embeddings (n, d); defaults to the offline MiniLM.
        parts: Which features to use: ``response`` / ``objective`` embeddings, their elementwise
            ``product`` and ``absdiff``, their ``cosine``, and hand-made ``refusal`` features.
        head: A trained head, or ``None`` to train later with :meth:`fit`.
        name: Name recorded in verdicts.
    """

    kind = "embedding-head"

    def __init__(
        self,
        encoder: Encoder | None = None,
        parts: Sequence[FeaturePart] = DEFAULT_EMBEDDING_PARTS,
        head: LogisticHead | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(head, name)
        unknown = set(parts) - {"response", "objective", "product", "absdiff", "cosine", "refusal"}
        if unknown or not parts:
            raise DataError(f"unknown or empty embedding feature parts: {sorted(unknown) or parts}")
        self.parts = tuple(parts)
        self._encoder = encoder

    @property
    def encoder(self) -> Encoder:
        """The sentence encoder, loaded on first use."""
        if self._encoder is None:
            from cai2.judges._encoder import load_encoder

            self._encoder = load_encoder()
        return self._encoder

    def config(self) -> dict[str, Any]:
        """Feature settings saved with the head."""
        return {"parts": list(self.parts)}

    def features(self, items: Sequence[JudgeItem]) -> np.ndarray:
        """Concatenated feature parts, shape (n, d)."""
        responses = [item.response for item in items]
        needs_objective = bool({"objective", "product", "absdiff", "cosine"} & set(self.parts))
        r = self.encoder(responses) if set(self.parts) - {"refusal"} else None
        o = self.encoder([item.prompt_text for item in items]) if needs_objective else None
        blocks: list[np.ndarray] = []
        for part in self.parts:
            if part == "response":
                blocks.append(r)  # type: ignore[arg-type]
            elif part == "objective":
                blocks.append(o)  # type: ignore[arg-type]
            elif part == "product":
                blocks.append(o * r)  # type: ignore[operator]
            elif part == "absdiff":
                blocks.append(np.abs(o - r))  # type: ignore[operator]
            elif part == "cosine":
                blocks.append(np.sum(o * r, axis=1, keepdims=True))  # type: ignore[operator]
            else:
                blocks.append(refusal_features(responses))
        return np.concatenate(blocks, axis=1)


class HiddenStateHeadJudge(TrainedHeadJudge):
    """Logistic head on a local model's mean-pooled hidden state of the whole exchange.

    Args:
        model: A :class:`~cai2.models.LocalChatModel` or a spec string such as ``hf:smollm2-135m``.
        layer: Which layer's hidden state to read (negative counts from the last).
        with_refusal_features: Append the hand-made refusal features.
        head: A trained head, or ``None``.
        name: Name recorded in verdicts.
        batch_size: Conversations per forward pass.
    """

    kind = "hidden-head"

    def __init__(
        self,
        model: LocalChatModel | str = "hf:smollm2-135m",
        layer: int = -1,
        with_refusal_features: bool = True,
        head: LogisticHead | None = None,
        name: str | None = None,
        batch_size: int = 8,
    ) -> None:
        super().__init__(head, name)
        self._model = model
        self.layer = layer
        self.with_refusal_features = with_refusal_features
        self.batch_size = batch_size

    @property
    def model(self) -> LocalChatModel:
        """The local model, loaded on first use."""
        if isinstance(self._model, str):
            from cai2.models import load_model

            loaded = load_model(self._model)
            if not isinstance(loaded, LocalChatModel):
                raise ModelError(
                    f"`{self._model}` cannot expose hidden states; a hidden-state judge needs a "
                    "local `hf:` model"
                )
            self._model = loaded
        return self._model

    def config(self) -> dict[str, Any]:
        """Model and layer saved with the head."""
        spec = self._model if isinstance(self._model, str) else self._model.spec
        return {"model": spec, "layer": self.layer, "refusal": self.with_refusal_features}

    def features(self, items: Sequence[JudgeItem]) -> np.ndarray:
        """Hidden state (and refusal features) of each exchange."""
        conversations = [_conversation(item) for item in items]
        states = [
            np.asarray(
                self.model.hidden_states(conversations[i : i + self.batch_size], self.layer),
                dtype=np.float64,
            )
            for i in range(0, len(conversations), self.batch_size)
        ]
        x = np.concatenate(states, axis=0)
        if self.with_refusal_features:
            x = np.concatenate([x, refusal_features([item.response for item in items])], axis=1)
        return x
