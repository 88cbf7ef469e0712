"""The context assessor: trained heads on sentence embeddings, explicit rules, complexity features.

``assess(prompt_or_conversation)`` returns a :class:`Context` with a risk tier, domains and a
complexity score, each backed by :class:`Evidence`:

* **risk** — a multinomial logistic regression on MiniLM embeddings of the user turns gives
  P(low … critical). A decision rule favouring recall turns these into a tier: the request is at
  least *high* when P(high) + P(critical) reaches a threshold chosen so that out-of-fold recall of
  high/critical on the training split meets a target. Explicit rules (:mod:`._rules`) can only raise
  the tier, and an optional LLM assessor can raise it too.
* **domains** — one logistic head per domain (one-vs-rest) with per-domain thresholds, plus the
  domains of any matching rule.
* **complexity** — a ridge regression on readable features (:mod:`._complexity`), clipped to [0, 1].

Every threshold and regularisation strength is chosen on out-of-fold predictions over the training
split (group-aware folds); the held-out test split is never seen by :meth:`ContextAssessor.fit`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cai2.context._complexity import FEATURE_NAMES, complexity_features, describe_features
from cai2.context._dataset import (
    LabelledPrompt,
    PromptOrConversation,
    as_conversation,
    user_text,
)
from cai2.context._encoder import SentenceEncoder, embed_texts
from cai2.context._rules import RULES, Rule, apply_rules
from cai2.context._types import Context, Evidence, RiskTier
from cai2.errors import DataError

if TYPE_CHECKING:
    from cai2.context._llm import LLMRiskAssessor

TIERS: tuple[RiskTier, ...] = tuple(RiskTier)
ASSESSOR_FORMAT = 1
"""Version of the saved-heads format; bump when the fitted arrays change meaning."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TierDecision:
    """Thresholds that turn tier probabilities into one tier (tuned out-of-fold on training data).

    Attributes:
        high_plus: At least *high* when P(high) + P(critical) ≥ this.
        critical_share: Then *critical* when P(critical) / (P(high) + P(critical)) ≥ this.
        medium_plus: Otherwise at least *medium* when P(medium) + P(high) + P(critical) ≥ this.
    """

    high_plus: float = 0.5
    critical_share: float = 0.5
    medium_plus: float = 0.5

    def decide(self, probabilities: np.ndarray) -> RiskTier:
        """The tier for one row of P(low), P(medium), P(high), P(critical)."""
        _, medium, high, critical = (float(p) for p in probabilities)
        severe = high + critical
        if severe >= self.high_plus:
            return RiskTier.critical if critical / severe >= self.critical_share else RiskTier.high
        return RiskTier.medium if medium + severe >= self.medium_plus else RiskTier.low


@dataclass
class FittedHeads:
    """Everything :meth:`ContextAssessor.fit` learns, as plain arrays (``.npz``, never pickle).

    The risk and domain heads read one feature row per input: the TF-IDF of the user text over
    ``tfidf_vocabulary`` followed by the sentence embedding.
    """

    tfidf_vocabulary: list[str]
    tfidf_idf: np.ndarray
    risk_coef: np.ndarray
    risk_intercept: np.ndarray
    decision: TierDecision
    domain_names: list[str]
    domain_coef: np.ndarray
    domain_intercept: np.ndarray
    domain_thresholds: np.ndarray
    complexity_coef: np.ndarray
    complexity_intercept: float
    reference_embeddings: np.ndarray
    reference_ids: list[str]
    reference_risk: list[str]
    reference_text: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Write the heads to ``path`` (``.npz``) and their metadata next to it (``.json``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # A per-process temporary name: two processes training at once must not clobber each other.
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            tfidf_vocabulary=np.array(self.tfidf_vocabulary, dtype=str),
            tfidf_idf=self.tfidf_idf,
            risk_coef=self.risk_coef,
            risk_intercept=self.risk_intercept,
            domain_names=np.array(self.domain_names, dtype=str),
            domain_coef=self.domain_coef,
            domain_intercept=self.domain_intercept,
            domain_thresholds=self.domain_thresholds,
            complexity_coef=self.complexity_coef,
            complexity_intercept=np.array([self.complexity_intercept]),
            reference_embeddings=self.reference_embeddings,
            reference_ids=np.array(self.reference_ids, dtype=str),
            reference_risk=np.array(self.reference_risk, dtype=str),
            reference_text=np.array(self.reference_text, dtype=str),
        )
        meta = {
            **self.meta,
            "format": ASSESSOR_FORMAT,
            "decision": self.decision.__dict__,
        }
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> FittedHeads:
        """Read heads written by :meth:`save`.

        Raises:
            DataError: if the files are missing, unreadable or from another format version.
        """
        meta_path = path.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            arrays = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{path}: cannot read saved context heads ({exc}); delete it to retrain"
            ) from exc
        if meta.get("format") != ASSESSOR_FORMAT:
            raise DataError(
                f"{meta_path}: heads format {meta.get('format')} != {ASSESSOR_FORMAT}; "
                "delete the file to retrain"
            )
        decision = TierDecision(**meta.pop("decision"))
        meta.pop("format")
        if arrays["complexity_coef"].shape != (len(FEATURE_NAMES),):
            raise DataError(
                f"{path}: saved complexity head has {arrays['complexity_coef'].shape[0]} features, "
                f"expected {len(FEATURE_NAMES)}; delete the file to retrain"
            )
        return cls(
            tfidf_vocabulary=[str(x) for x in arrays["tfidf_vocabulary"]],
            tfidf_idf=arrays["tfidf_idf"],
            risk_coef=arrays["risk_coef"],
            risk_intercept=arrays["risk_intercept"],
            decision=decision,
            domain_names=[str(x) for x in arrays["domain_names"]],
            domain_coef=arrays["domain_coef"],
            domain_intercept=arrays["domain_intercept"],
            domain_thresholds=arrays["domain_thresholds"],
            complexity_coef=arrays["complexity_coef"],
            complexity_intercept=float(arrays["complexity_intercept"][0]),
            reference_embeddings=arrays["reference_embeddings"],
            reference_ids=[str(x) for x in arrays["reference_ids"]],
            reference_risk=[str(x) for x in arrays["reference_risk"]],
            reference_text=[str(x) for x in arrays["reference_text"]],
            meta=meta,
        )


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


class ContextAssessor:
    """Assesses prompts and conversations; built by :meth:`fit` or loaded from saved heads.

    Args:
        encoder: A sentence encoder (``SentenceTransformer``-compatible ``encode``).
        heads: Fitted heads from :meth:`fit` or :meth:`FittedHeads.load`.
        rules: The explicit rules; they only ever raise the tier.
        llm: Optional LLM assessor whose tier (when higher) also raises the result.
    """

    def __init__(
        self,
        encoder: SentenceEncoder,
        heads: FittedHeads,
        *,
        rules: tuple[Rule, ...] = RULES,
        llm: LLMRiskAssessor | None = None,
    ) -> None:
        self.encoder = encoder
        self.heads = heads
        self.rules = rules
        self.llm = llm
        self._vectorizer: Any = None

    # ------------------------------------------------------------------ training

    @classmethod
    def fit(
        cls,
        encoder: SentenceEncoder,
        examples: Sequence[LabelledPrompt],
        *,
        target_recall: float = 0.97,
        folds: int = 5,
        seed: int = 0,
        progress: Progress | None = None,
        meta: dict[str, Any] | None = None,
        c_grid: Sequence[float] | None = None,
    ) -> ContextAssessor:
        """Train the heads on the ``train`` split of ``examples`` (``test`` rows are ignored).

        Args:
            encoder: The sentence encoder the heads read.
            examples: Labelled prompts; only those with ``split == "train"`` are used.
            target_recall: Out-of-fold recall of high+critical the tier decision must reach.
            folds: Group-aware folds for out-of-fold predictions (model selection, thresholds).
            seed: Seed for the fold assignment.
            progress: Called with a short message at each step.
            meta: Extra metadata stored with the heads (e.g. dataset and encoder hashes).
            c_grid: Inverse regularisation strengths to try for the risk head.

        Raises:
            DataError: if there are too few training examples or a tier has none.
        """
        from cai2.context._training import C_GRID, fit_heads

        train = [example for example in examples if example.split == "train"]
        say = progress or (lambda _message: None)
        say(f"embedding {len(train)} training prompts")
        embeddings = embed_texts(encoder, [user_text(e.conversation) for e in train])
        heads = fit_heads(
            train,
            embeddings,
            target_recall=target_recall,
            folds=folds,
            seed=seed,
            rules=RULES,
            progress=say,
            c_grid=c_grid or C_GRID,
        )
        heads.meta.update(meta or {})
        return cls(encoder, heads)

    # ------------------------------------------------------------------ inference

    def assess(self, prompt_or_conversation: PromptOrConversation) -> Context:
        """Assess one prompt or conversation."""
        return self.assess_batch([prompt_or_conversation])[0]

    def assess_batch(
        self, inputs: Sequence[PromptOrConversation], batch_size: int = 32
    ) -> list[Context]:
        """Assess many prompts or conversations (embedded in batches of ``batch_size``)."""
        conversations = [as_conversation(item) for item in inputs]
        if not conversations:
            return []
        texts = [user_text(c) for c in conversations]
        embeddings = embed_texts(self.encoder, texts, batch_size=batch_size)
        risk = self.risk_probabilities(texts, embeddings)
        domains = self._linear(
            texts, embeddings, self.heads.domain_coef, self.heads.domain_intercept
        )
        return [
            self._assess_one(conversation, embedding, probabilities, domain_scores)
            for conversation, embedding, probabilities, domain_scores in zip(
                conversations, embeddings, risk, domains, strict=True
            )
        ]

    def risk_probabilities(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """P(low), P(medium), P(high), P(critical) for user texts and their embeddings."""
        return _softmax(
            self._linear(texts, embeddings, self.heads.risk_coef, self.heads.risk_intercept)
        )

    def _linear(
        self, texts: Sequence[str], embeddings: np.ndarray, coef: np.ndarray, intercept: np.ndarray
    ) -> np.ndarray:
        """``[tfidf(texts), embeddings] @ coef.T + intercept`` without building the dense row."""
        if self._vectorizer is None:
            from cai2.context._training import make_vectorizer

            vectorizer = make_vectorizer(self.heads.tfidf_vocabulary)
            vectorizer.idf_ = self.heads.tfidf_idf
            self._vectorizer = vectorizer
        n_terms = len(self.heads.tfidf_vocabulary)
        sparse_part = self._vectorizer.transform(list(texts)) @ coef[:, :n_terms].T
        return np.asarray(sparse_part + embeddings @ coef[:, n_terms:].T + intercept)

    def _assess_one(
        self,
        conversation: list[Any],
        embedding: np.ndarray,
        probabilities: np.ndarray,
        domain_scores: np.ndarray,
    ) -> Context:
        heads = self.heads
        evidence: list[Evidence] = []
        tier = heads.decision.decide(probabilities)
        shown = ", ".join(
            f"P({t.value})={p:.2f}" for t, p in zip(TIERS, probabilities, strict=True)
        )
        evidence.append(
            Evidence(
                source="classifier",
                detail=f"risk head (embedding + TF-IDF): {shown} → {tier.value}",
                weight=float(probabilities[tier.rank]),
            )
        )
        neighbour = int(np.argmax(heads.reference_embeddings @ embedding))
        similarity = float(heads.reference_embeddings[neighbour] @ embedding)
        text = heads.reference_text[neighbour]
        text = text if len(text) <= 90 else text[:87] + "..."
        evidence.append(
            Evidence(
                source="classifier",
                detail=(
                    f"nearest labelled example `{heads.reference_ids[neighbour]}` "
                    f"({heads.reference_risk[neighbour]}, cosine {similarity:.2f}): “{text}”"
                ),
                weight=similarity,
            )
        )

        chosen: dict[str, float] = {
            name: float(np.clip(score, 0.0, 1.0))
            for name, score, threshold in zip(
                heads.domain_names, domain_scores, heads.domain_thresholds, strict=True
            )
            if score >= threshold
        }
        if not chosen:
            best = int(np.argmax(domain_scores))
            chosen[heads.domain_names[best]] = float(np.clip(domain_scores[best], 0.0, 1.0))

        for hit in apply_rules(conversation, self.rules):
            evidence.append(hit.evidence())
            if hit.rule.tier.rank > tier.rank:
                tier = hit.rule.tier
            for domain in hit.rule.domains:
                chosen.setdefault(domain, 1.0)

        if self.llm is not None:
            llm_tier, llm_evidence = self.llm.assess(conversation)
            evidence.append(llm_evidence)
            if llm_tier is not None and llm_tier.rank > tier.rank:
                tier = llm_tier

        if len(chosen) > 1:
            chosen.pop("general", None)
        domains = sorted(chosen, key=lambda name: -chosen[name])
        evidence.append(
            Evidence(
                source="classifier",
                detail="domains: " + ", ".join(f"{d} ({chosen[d]:.2f})" for d in domains),
                weight=max(chosen.values()),
            )
        )

        features = complexity_features(conversation)
        complexity = float(
            np.clip(features @ heads.complexity_coef + heads.complexity_intercept, 0.0, 1.0)
        )
        evidence.append(
            Evidence(
                source="classifier",
                detail=f"complexity {complexity:.2f} from {describe_features(features)}",
                weight=complexity,
            )
        )
        return Context(risk=tier, domains=domains, complexity=complexity, evidence=evidence)
