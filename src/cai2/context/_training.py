"""Fitting the context heads: model selection and thresholds on out-of-fold training predictions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cai2.context._assessor import FittedHeads, TierDecision
from cai2.context._complexity import complexity_features
from cai2.context._dataset import LabelledPrompt, user_text
from cai2.context._rules import Rule, rule_floor
from cai2.context._types import RiskTier
from cai2.errors import DataError

C_GRID = (4.0, 16.0)
"""Inverse regularisation strengths tried for the risk head."""
DOMAIN_ALPHA = 1.0
"""Ridge penalty of the domain heads."""
MIN_DOMAIN_POSITIVES = 3
"""Domains with fewer positive training examples get no head (rules may still add them)."""

_HIGH_GRID = np.round(np.arange(0.05, 0.951, 0.025), 3)
_SHARE_GRID = np.round(np.arange(0.10, 0.901, 0.05), 3)
_MEDIUM_GRID = np.round(np.arange(0.10, 0.901, 0.05), 3)
_DOMAIN_THRESHOLD_GRID = np.round(np.arange(0.10, 0.801, 0.05), 3)
_CASCADE_GRID = np.round(np.arange(0.50, 0.951, 0.025), 3)

FAST_C = 4.0
"""Inverse regularisation of the fast risk head (character TF-IDF + static token embedding); on
the training split's folds C = 1, 4 and 16 scored within 0.01 of each other alone and C = 4 did as
well as any in the average with the full head."""
ENSEMBLE_WEIGHT = 0.5
"""Weight of the full head when the full path averages it with the fast head's probabilities."""
CASCADE_OFF = 2.0
"""A cascade threshold no probability reaches: every prompt takes the full (MiniLM) path."""


def macro_f1(truth: np.ndarray, predicted: np.ndarray, classes: int = 4) -> float:
    """Macro-averaged F1 over ``classes`` integer labels (a class absent from both scores 0)."""
    confusion = np.bincount(truth * classes + predicted, minlength=classes * classes).reshape(
        classes, classes
    )
    true_positive = np.diag(confusion).astype(float)
    precision_denominator = confusion.sum(axis=0)
    recall_denominator = confusion.sum(axis=1)
    denominator = precision_denominator + recall_denominator
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros(classes), where=denominator > 0)
    return float(f1.mean())


def _class_f1_sum(truth: np.ndarray, predicted: np.ndarray, classes: tuple[int, ...]) -> float:
    total = 0.0
    for label in classes:
        hit = float(np.sum((truth == label) & (predicted == label)))
        denominator = float(np.sum(truth == label) + np.sum(predicted == label))
        total += 2 * hit / denominator if denominator else 0.0
    return total


def decide_tiers(
    probabilities: np.ndarray,
    floors: np.ndarray,
    high_plus: float,
    critical_share: float,
    medium_plus: float,
) -> np.ndarray:
    """Vectorised :meth:`TierDecision.decide` followed by the rule floors (tier ranks)."""
    severe = probabilities[:, 2] + probabilities[:, 3]
    share = np.divide(probabilities[:, 3], severe, out=np.zeros_like(severe), where=severe > 0)
    upper = np.where(share >= critical_share, 3, 2)
    lower = np.where(probabilities[:, 1] + severe >= medium_plus, 1, 0)
    return np.maximum(np.where(severe >= high_plus, upper, lower), floors)


def tune_decision(
    probabilities: np.ndarray, truth: np.ndarray, floors: np.ndarray, target_recall: float
) -> tuple[tuple[float, float, float], float, float]:
    """Thresholds maximising macro-F1 subject to recall of high+critical ≥ ``target_recall``.

    Returns:
        ((high_plus, critical_share, medium_plus), macro-F1, recall of high+critical).
    """
    severe_truth = truth >= 2
    severe = probabilities[:, 2] + probabilities[:, 3]
    recalls = np.array(
        [
            float(np.mean(np.maximum(np.where(severe >= h, 2, 0), floors)[severe_truth] >= 2))
            for h in _HIGH_GRID
        ]
    )
    allowed = _HIGH_GRID[recalls >= target_recall]
    if allowed.size == 0:
        # The target is out of reach: take the most recall-friendly threshold.
        allowed = _HIGH_GRID[recalls == recalls.max()][:1]
    # Macro-F1 separates: given `high_plus`, `critical_share` only moves predictions between high
    # and critical, and `medium_plus` only between low and medium, so each is tuned on its own.
    best: tuple[float, tuple[float, float, float]] = (-1.0, (0.5, 0.5, 0.5))
    for high_plus in allowed:
        upper = [
            _class_f1_sum(truth, decide_tiers(probabilities, floors, high_plus, s, 0.5), (2, 3))
            for s in _SHARE_GRID
        ]
        lower = [
            _class_f1_sum(truth, decide_tiers(probabilities, floors, high_plus, 0.5, m), (0, 1))
            for m in _MEDIUM_GRID
        ]
        share = _SHARE_GRID[int(np.argmax(upper))]
        medium = _MEDIUM_GRID[int(np.argmax(lower))]
        score = macro_f1(truth, decide_tiers(probabilities, floors, high_plus, share, medium))
        if score > best[0]:
            best = (score, (float(high_plus), float(share), float(medium)))
    thresholds = best[1]
    predicted = decide_tiers(probabilities, floors, *thresholds)
    recall = float(np.mean(predicted[severe_truth] >= 2)) if severe_truth.any() else 1.0
    return thresholds, best[0], recall


def fold_splits(train: Sequence[LabelledPrompt], folds: int, seed: int) -> list[Any]:
    """The (train indices, validation indices) of each group-aware, tier-stratified fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.array([e.risk.rank for e in train])
    groups = [e.group or e.id for e in train]
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels, groups=groups))


def make_char_vectorizer(vocabulary: Sequence[str] | None = None) -> Any:
    """Character 2–5-gram TF-IDF (within word boundaries) for the fast head: robust to spelling."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(2, 5),
        min_df=2,
        sublinear_tf=True,
        lowercase=True,
        vocabulary=vocabulary,
    )


def tune_cascade(
    full_predicted: np.ndarray,
    fast_probabilities: np.ndarray,
    truth: np.ndarray,
    floors: np.ndarray,
) -> tuple[float, float, float, float]:
    """The lowest confidence at which the fast head may decide without costing accuracy.

    The cascade takes the fast head's most probable tier (raised by the rule floors) when its
    probability is at least the threshold, and the full model's tier otherwise. The threshold is the
    smallest on the grid whose out-of-fold macro-F1 and recall of high+critical are both at least
    the full model's; :data:`CASCADE_OFF` when none is.

    Returns:
        (threshold, share of prompts on the fast path, macro-F1, recall of high+critical).
    """
    severe = truth >= 2

    def recall(predicted: np.ndarray) -> float:
        return float(np.mean(predicted[severe] >= 2)) if severe.any() else 1.0

    full_f1, full_recall = macro_f1(truth, full_predicted), recall(full_predicted)
    fast_predicted = np.maximum(fast_probabilities.argmax(axis=1), floors)
    confidence = fast_probabilities.max(axis=1)
    for threshold in _CASCADE_GRID:
        fast = confidence >= threshold
        combined = np.where(fast, fast_predicted, full_predicted)
        score, severe_recall = macro_f1(truth, combined), recall(combined)
        if score >= full_f1 - 1e-9 and severe_recall >= full_recall - 1e-9:
            return float(threshold), float(fast.mean()), score, severe_recall
    return CASCADE_OFF, 0.0, full_f1, full_recall


def fast_features(char_vectorizer: Any, texts: Sequence[str], static: np.ndarray) -> Any:
    """The fast head's input: character TF-IDF and the static token embedding."""
    from scipy import sparse

    return sparse.hstack([char_vectorizer.transform(texts), sparse.csr_matrix(static)]).tocsr()


def _domain_thresholds(targets: np.ndarray, scores: np.ndarray) -> list[float]:
    thresholds = []
    for j in range(targets.shape[1]):
        f1s = [_binary_f1(targets[:, j] > 0, scores[:, j] >= t) for t in _DOMAIN_THRESHOLD_GRID]
        thresholds.append(float(_DOMAIN_THRESHOLD_GRID[int(np.argmax(f1s))]))
    return thresholds


def make_vectorizer(vocabulary: Sequence[str] | None = None) -> Any:
    """The word 1–2-gram TF-IDF that complements the embeddings with exact wording."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Terms seen in one prompt only are mostly noise (out-of-fold macro-F1 0.833 → 0.839 without).
    return TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True, vocabulary=vocabulary
    )


def _features(vectorizer: Any, texts: Sequence[str], embeddings: np.ndarray) -> Any:
    from scipy import sparse

    return sparse.hstack([vectorizer.transform(texts), sparse.csr_matrix(embeddings)]).tocsr()


def fit_heads(
    train: Sequence[LabelledPrompt],
    embeddings: np.ndarray,
    *,
    target_recall: float,
    folds: int,
    seed: int,
    rules: tuple[Rule, ...],
    progress: Callable[[str], None],
    c_grid: Sequence[float] = C_GRID,
    static: np.ndarray | None = None,
    fold_embeddings: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
) -> FittedHeads:
    """Fit the risk, domain and complexity heads; see :meth:`ContextAssessor.fit`.

    With ``static`` (static token embeddings of the training prompts) it also fits the fast heads
    of the cascade and tunes the cascade threshold out-of-fold; without, the cascade is off.

    ``fold_embeddings`` gives, per fold of :func:`fold_splits` (same ``folds`` and ``seed``), the
    embeddings of that fold's training and validation prompts, for an encoder that was itself
    trained on the fold's training part (:mod:`cai2.context._finetune`); by default every fold
    reads ``embeddings``.
    """
    from sklearn.linear_model import LogisticRegression, Ridge

    from cai2.constitution._domains import KNOWN_DOMAINS

    tiers = list(RiskTier)
    if len(train) < 4 * folds:
        raise DataError(
            f"only {len(train)} training prompts; context heads need at least {4 * folds}"
        )
    labels = np.array([e.risk.rank for e in train])
    missing = [t.value for t in tiers if not np.any(labels == t.rank)]
    if missing:
        raise DataError(f"the training split has no examples of tier(s) {missing}")
    texts = [user_text(e.conversation) for e in train]
    floors = np.array([rule_floor(e.conversation, rules) for e in train])
    splits = fold_splits(train, folds, seed)  # the folds that `fold_embeddings` must follow
    if fold_embeddings is None:
        fold_embeddings = [(embeddings[t], embeddings[v]) for t, v in splits]
    elif len(fold_embeddings) != len(splits):
        raise DataError(f"{len(fold_embeddings)} fold embeddings for {len(splits)} folds")
    # Per fold, the TF-IDF vocabulary is learnt from that fold's training part only.
    fold_features = []
    for (train_index, valid_index), (train_e, valid_e) in zip(splits, fold_embeddings, strict=True):
        vectorizer = make_vectorizer().fit([texts[i] for i in train_index])
        fold_features.append(
            (
                _features(vectorizer, [texts[i] for i in train_index], train_e),
                _features(vectorizer, [texts[i] for i in valid_index], valid_e),
            )
        )

    # Domain targets first: the fast heads' out-of-fold pass fits their domain head as well.
    domain_names = [
        d for d in KNOWN_DOMAINS if sum(d in e.domains for e in train) >= MIN_DOMAIN_POSITIVES
    ]
    targets = np.array([[d in e.domains for d in domain_names] for e in train], dtype=float)
    n_classes = len(tiers)
    n_domains = len(domain_names)

    fast_oof: np.ndarray | None = None
    fast_domain_oof = np.zeros_like(targets)
    if static is not None:
        progress(f"fitting the fast heads out-of-fold ({folds} folds)")
        fast_oof = np.zeros((len(labels), n_classes))
        for train_index, valid_index in splits:
            char_vectorizer = make_char_vectorizer().fit([texts[i] for i in train_index])
            train_x = fast_features(
                char_vectorizer, [texts[i] for i in train_index], static[train_index]
            )
            valid_x = fast_features(
                char_vectorizer, [texts[i] for i in valid_index], static[valid_index]
            )
            head = LogisticRegression(C=FAST_C, max_iter=3000, class_weight="balanced")
            fast_oof[valid_index] = head.fit(train_x, labels[train_index]).predict_proba(valid_x)
            ridge = Ridge(alpha=DOMAIN_ALPHA).fit(train_x, targets[train_index])
            fast_domain_oof[valid_index] = ridge.predict(valid_x)

    # With fast heads, the full path decides on the mean of both heads' probabilities: out-of-fold
    # on the training split that averaging raised macro-F1 by about 0.04 (see docs/context.md).
    weight = ENSEMBLE_WEIGHT if fast_oof is not None else 1.0
    progress(f"choosing the risk head's regularisation ({len(c_grid)} candidates × {folds} folds)")
    candidates = []
    for c in c_grid:
        oof = np.zeros((len(labels), n_classes))
        for (train_index, valid_index), (train_x, valid_x) in zip(
            splits, fold_features, strict=True
        ):
            head = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
            head.fit(train_x, labels[train_index])
            oof[valid_index] = head.predict_proba(valid_x)
        alone = tune_decision(oof, labels, floors, target_recall)[1]
        if fast_oof is not None:
            oof = weight * oof + (1.0 - weight) * fast_oof
        thresholds, score, recall = tune_decision(oof, labels, floors, target_recall)
        candidates.append((score, c, thresholds, recall, oof, alone))
    score, best_c, thresholds, recall, best_oof, full_alone = max(
        candidates, key=lambda item: item[0]
    )
    fast_alone = (
        tune_decision(fast_oof, labels, floors, target_recall)[1] if fast_oof is not None else None
    )
    full_oof_predicted = decide_tiers(best_oof, floors, *thresholds)
    vectorizer = make_vectorizer().fit(texts)
    features = _features(vectorizer, texts, embeddings)
    risk_head = LogisticRegression(C=best_c, max_iter=3000, class_weight="balanced").fit(
        features, labels
    )

    progress("fitting domain heads")
    # One multi-output ridge regression for all domains: a closed-form fit, so tuning the
    # per-domain thresholds out-of-fold costs almost nothing.
    oof_scores = np.zeros_like(targets)
    for (train_index, valid_index), (train_x, valid_x) in zip(splits, fold_features, strict=True):
        ridge = Ridge(alpha=DOMAIN_ALPHA).fit(train_x, targets[train_index])
        oof_scores[valid_index] = ridge.predict(valid_x)
    domain_thresholds = _domain_thresholds(targets, oof_scores)
    domain_head = Ridge(alpha=DOMAIN_ALPHA).fit(features, targets)

    fast: dict[str, Any] = {
        "char_vocabulary": [],
        "char_idf": np.zeros(0),
        "risk_coef": np.zeros((n_classes, 0), dtype=np.float32),
        "risk_intercept": np.zeros(n_classes, dtype=np.float32),
        "domain_coef": np.zeros((n_domains, 0), dtype=np.float32),
        "domain_intercept": np.zeros(n_domains, dtype=np.float32),
        "domain_thresholds": np.zeros(n_domains),
        "reference_static": np.zeros((len(train), 0), dtype=np.float32),
    }
    cascade = (CASCADE_OFF, 0.0, score, recall)
    if static is not None and fast_oof is not None:
        progress("fitting the fast heads and the cascade threshold")
        cascade = tune_cascade(full_oof_predicted, fast_oof, labels, floors)
        char_vectorizer = make_char_vectorizer().fit(texts)
        fast_x = fast_features(char_vectorizer, texts, static)
        fast_risk = LogisticRegression(C=FAST_C, max_iter=3000, class_weight="balanced").fit(
            fast_x, labels
        )
        fast_domain = Ridge(alpha=DOMAIN_ALPHA).fit(fast_x, targets)
        fast = {
            "char_vocabulary": list(char_vectorizer.get_feature_names_out()),
            "char_idf": char_vectorizer.idf_.astype(np.float64),
            "risk_coef": fast_risk.coef_.astype(np.float32),
            "risk_intercept": fast_risk.intercept_.astype(np.float32),
            "domain_coef": fast_domain.coef_.astype(np.float32),
            "domain_intercept": fast_domain.intercept_.astype(np.float32),
            "domain_thresholds": np.array(_domain_thresholds(targets, fast_domain_oof)),
            "reference_static": static.astype(np.float32),
        }

    progress("fitting the complexity head")
    complexity_inputs = np.stack([complexity_features(e.conversation) for e in train])
    complexity_head = Ridge(alpha=1.0).fit(
        complexity_inputs, np.array([e.complexity for e in train])
    )

    return FittedHeads(
        tfidf_vocabulary=list(vectorizer.get_feature_names_out()),
        tfidf_idf=vectorizer.idf_.astype(np.float64),
        risk_coef=risk_head.coef_.astype(np.float32),
        risk_intercept=risk_head.intercept_.astype(np.float32),
        decision=TierDecision(*thresholds),
        domain_names=domain_names,
        domain_coef=domain_head.coef_.astype(np.float32),
        domain_intercept=domain_head.intercept_.astype(np.float32),
        domain_thresholds=np.array(domain_thresholds),
        complexity_coef=complexity_head.coef_.astype(np.float64),
        complexity_intercept=float(complexity_head.intercept_),
        reference_embeddings=embeddings.astype(np.float32),
        reference_ids=[e.id for e in train],
        reference_risk=[e.risk.value for e in train],
        reference_text=[user_text(e.conversation).replace("\n", " / ") for e in train],
        fast_char_vocabulary=fast["char_vocabulary"],
        fast_char_idf=fast["char_idf"],
        fast_risk_coef=fast["risk_coef"],
        fast_risk_intercept=fast["risk_intercept"],
        fast_domain_coef=fast["domain_coef"],
        fast_domain_intercept=fast["domain_intercept"],
        fast_domain_thresholds=fast["domain_thresholds"],
        reference_static=fast["reference_static"],
        cascade_threshold=cascade[0],
        ensemble_weight=weight,
        meta={
            "n_train": len(train),
            "risk_c": best_c,
            "tfidf_terms": len(vectorizer.vocabulary_),
            "oof_risk_macro_f1": round(score, 4),
            "oof_high_critical_recall": round(recall, 4),
            "target_recall": target_recall,
            "fast_c": FAST_C,
            "ensemble_weight": weight,
            "oof_full_head_alone_macro_f1": round(full_alone, 4),
            "oof_fast_head_alone_macro_f1": None if fast_alone is None else round(fast_alone, 4),
            "cascade_threshold": cascade[0],
            "oof_cascade_fast_share": round(cascade[1], 4),
            "oof_cascade_macro_f1": round(cascade[2], 4),
            "oof_cascade_high_critical_recall": round(cascade[3], 4),
            "folds": folds,
            "seed": seed,
        },
    )


def _binary_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    true_positive = float(np.sum(truth & predicted))
    denominator = float(np.sum(truth) + np.sum(predicted))
    return 2 * true_positive / denominator if denominator else 0.0
