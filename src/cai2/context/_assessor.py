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

**Cascade.** A *fast* head (logistic regression on a character TF-IDF plus the mean of the
encoder's input token embeddings, no transformer pass) scores every prompt first. When its top
probability reaches ``cascade_threshold`` its tier is taken and the encoder is skipped; otherwise
the full path runs and decides on the average of the full and fast heads' probabilities. The
threshold is the lowest one whose out-of-fold macro-F1 and high+critical recall on the training
split are no worse than the full path's, so the fast path costs no accuracy there.

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
from cai2.context._encoder import SentenceEncoder, StaticEmbedder, embed_one, embed_texts
from cai2.context._onnx import EncoderSpec, encoder_spec
from cai2.context._rules import RULES, Rule, apply_rules
from cai2.context._types import Context, Evidence, RiskTier
from cai2.errors import ConfigError, DataError

if TYPE_CHECKING:
    from cai2.context._llm import LLMRiskAssessor

TIERS: tuple[RiskTier, ...] = tuple(RiskTier)
ASSESSOR_FORMAT = 2
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
    ``tfidf_vocabulary`` followed by the sentence embedding. The *fast* heads read a character
    TF-IDF over ``fast_char_vocabulary`` followed by the static token embedding (no transformer
    pass). The full path decides on ``ensemble_weight`` × the full head's probabilities plus the
    rest × the fast head's; ``cascade_threshold`` is the fast head's probability at which its tier
    is taken without running the encoder at all (above 1: cascade off).
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
    fast_char_vocabulary: list[str] = field(default_factory=list)
    fast_char_idf: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fast_risk_coef: np.ndarray = field(default_factory=lambda: np.zeros((4, 0), np.float32))
    fast_risk_intercept: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    fast_domain_coef: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    fast_domain_intercept: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    fast_domain_thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reference_static: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    cascade_threshold: float = 2.0
    ensemble_weight: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def fast_fitted(self) -> bool:
        """Whether the fast heads were fitted (they need an encoder with a token embedding)."""
        return self.fast_risk_coef.shape[1] > 0

    @property
    def has_fast_heads(self) -> bool:
        """Whether the cascade can be used: fast heads fitted and a reachable threshold."""
        return self.fast_fitted and self.cascade_threshold <= 1.0

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
            fast_char_vocabulary=np.array(self.fast_char_vocabulary, dtype=str),
            fast_char_idf=self.fast_char_idf,
            fast_risk_coef=self.fast_risk_coef,
            fast_risk_intercept=self.fast_risk_intercept,
            fast_domain_coef=self.fast_domain_coef,
            fast_domain_intercept=self.fast_domain_intercept,
            fast_domain_thresholds=self.fast_domain_thresholds,
            reference_static=self.reference_static,
        )
        meta = {
            **self.meta,
            "format": ASSESSOR_FORMAT,
            "decision": self.decision.__dict__,
            "cascade_threshold": self.cascade_threshold,
            "ensemble_weight": self.ensemble_weight,
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
        cascade_threshold = float(meta.pop("cascade_threshold"))
        ensemble_weight = float(meta.pop("ensemble_weight"))
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
            fast_char_vocabulary=[str(x) for x in arrays["fast_char_vocabulary"]],
            fast_char_idf=arrays["fast_char_idf"],
            fast_risk_coef=arrays["fast_risk_coef"],
            fast_risk_intercept=arrays["fast_risk_intercept"],
            fast_domain_coef=arrays["fast_domain_coef"],
            fast_domain_intercept=arrays["fast_domain_intercept"],
            fast_domain_thresholds=arrays["fast_domain_thresholds"],
            reference_static=arrays["reference_static"],
            cascade_threshold=cascade_threshold,
            ensemble_weight=ensemble_weight,
            meta=meta,
        )


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


class SparseTfidf:
    """A fitted ``TfidfVectorizer``'s transform for a few texts at a time, without sklearn overhead.

    sklearn's ``transform`` spends ~1–3 ms per call on input validation; at batch 1 that was most of
    the fast path. This computes the same l2-normalised sublinear TF-IDF (checked against sklearn in
    the tests) with the vectorizer's own analyzer, as (term indices, values) per text.
    """

    def __init__(self, vectorizer: Any, vocabulary: Sequence[str], idf: np.ndarray) -> None:
        self.analyze = vectorizer.build_analyzer()
        self.index = {term: i for i, term in enumerate(vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float64)

    def rows(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each text, the indices of its known terms and their TF-IDF weights."""
        out = []
        for text in texts:
            counts: dict[int, int] = {}
            for term in self.analyze(text):
                j = self.index.get(term)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            values = (np.log(np.fromiter(counts.values(), float, len(counts))) + 1.0) * self.idf[
                indices
            ]
            norm = float(np.sqrt(values @ values)) if len(values) else 0.0
            out.append((indices, values / norm if norm > 0 else values))
        return out

    @staticmethod
    def dot(rows: list[tuple[np.ndarray, np.ndarray]], coef: np.ndarray) -> np.ndarray:
        """``tfidf @ coef.T`` for ``coef`` of shape (outputs, terms)."""
        result = np.zeros((len(rows), coef.shape[0]))
        for r, (indices, values) in enumerate(rows):
            if len(indices):
                result[r] = coef[:, indices] @ values
        return result


class ContextAssessor:
    """Assesses prompts and conversations; built by :meth:`fit` or loaded from saved heads.

    Args:
        encoder: A sentence encoder (``SentenceTransformer``-compatible ``encode``).
        heads: Fitted heads from :meth:`fit` or :meth:`FittedHeads.load`.
        rules: The explicit rules; they only ever raise the tier.
        llm: Optional LLM assessor whose tier (when higher) also raises the result.
        cascade: Let the fast heads (TF-IDF + static token embeddings, no transformer pass) decide
            prompts on which they are confident (``heads.cascade_threshold``, tuned out-of-fold so
            that it cost no accuracy there); ``False`` runs the full model on every prompt.
    """

    def __init__(
        self,
        encoder: SentenceEncoder,
        heads: FittedHeads,
        *,
        rules: tuple[Rule, ...] = RULES,
        llm: LLMRiskAssessor | None = None,
        cascade: bool = True,
    ) -> None:
        trained_on = EncoderSpec.from_dict(heads.meta.get("encoder"))
        given = encoder_spec(encoder)
        if given is not None and given != trained_on:
            raise ConfigError(
                f"these heads were trained on {trained_on.label} embeddings but the encoder is "
                f"{given.label}; load the matching encoder with load_context_encoder() or retrain"
            )
        self.encoder = encoder
        self.heads = heads
        self.rules = rules
        self.llm = llm
        self.cascade = cascade
        self._words: SparseTfidf | None = None
        self._chars: SparseTfidf | None = None
        self._static: StaticEmbedder | None = None
        self._static_checked = False

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
        fold_embeddings: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
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
            fold_embeddings: Per out-of-fold pass, the embeddings of that fold's training and
                validation prompts from an encoder trained on the fold's training part only
                (:func:`cai2.context.fit_finetuned_assessor` passes them); ``encoder``'s own by
                default.

        Raises:
            DataError: if there are too few training examples or a tier has none.
        """
        from cai2.context._training import C_GRID, fit_heads

        train = [example for example in examples if example.split == "train"]
        say = progress or (lambda _message: None)
        say(f"embedding {len(train)} training prompts")
        texts = [user_text(e.conversation) for e in train]
        embeddings = embed_texts(encoder, texts)
        static_embedder = StaticEmbedder.from_encoder(encoder)
        heads = fit_heads(
            train,
            embeddings,
            target_recall=target_recall,
            folds=folds,
            seed=seed,
            rules=RULES,
            progress=say,
            c_grid=c_grid or C_GRID,
            static=static_embedder.embed(texts) if static_embedder is not None else None,
            fold_embeddings=fold_embeddings,
        )
        spec = encoder_spec(encoder)
        if spec is not None:
            heads.meta["encoder"] = spec.as_dict()
        heads.meta.update(meta or {})
        return cls(encoder, heads)

    # ------------------------------------------------------------------ inference

    def assess(self, prompt_or_conversation: PromptOrConversation) -> Context:
        """Assess one prompt or conversation."""
        return self.assess_batch([prompt_or_conversation])[0]

    def assess_batch(
        self, inputs: Sequence[PromptOrConversation], batch_size: int = 32
    ) -> list[Context]:
        """Assess many prompts or conversations (embedded in batches of ``batch_size``).

        With the cascade on, the fast heads score every input first and only the inputs they are
        unsure about are embedded by the encoder.
        """
        conversations = [as_conversation(item) for item in inputs]
        if not conversations:
            return []
        texts = [user_text(c) for c in conversations]
        results: list[Context | None] = [None] * len(texts)
        full_rows = list(range(len(texts)))
        static = self._static_embedder() if self.heads.fast_fitted else None
        if static is not None:
            statics = static.embed(texts)
            char_rows = self._char_tfidf().rows(texts)
            fast_probabilities = _softmax(
                self._fast_linear(
                    char_rows, statics, self.heads.fast_risk_coef, self.heads.fast_risk_intercept
                )
            )
            confident = fast_probabilities.max(axis=1) >= self.heads.cascade_threshold
            if not (self.cascade and self.heads.has_fast_heads):
                confident[:] = False
            fast_rows = [i for i in full_rows if confident[i]]
            full_rows = [i for i in full_rows if not confident[i]]
            if fast_rows:
                fast_statics = statics[fast_rows]
                domains = self._fast_linear(
                    [char_rows[i] for i in fast_rows],
                    fast_statics,
                    self.heads.fast_domain_coef,
                    self.heads.fast_domain_intercept,
                )
                for row, (i, vector) in enumerate(zip(fast_rows, fast_statics, strict=True)):
                    probabilities = fast_probabilities[i]
                    tier = TIERS[int(np.argmax(probabilities))]
                    results[i] = self._assess_one(
                        conversations[i],
                        probabilities,
                        tier,
                        f"fast path (character TF-IDF + static token embeddings; confidence "
                        f"{probabilities.max():.2f} ≥ {self.heads.cascade_threshold:.2f}, "
                        "encoder skipped)",
                        self._neighbour(self.heads.reference_static, vector, "static cosine"),
                        domains[row],
                        self.heads.fast_domain_thresholds,
                    )
        if full_rows:
            full_texts = [texts[i] for i in full_rows]
            if len(full_texts) == 1:
                embeddings = embed_one(self.encoder, full_texts[0])
            else:
                embeddings = embed_texts(self.encoder, full_texts, batch_size=batch_size)
            rows = self._word_tfidf().rows(full_texts)
            risk = _softmax(
                self._linear(rows, embeddings, self.heads.risk_coef, self.heads.risk_intercept)
            )
            if static is not None:
                weight = self.heads.ensemble_weight
                risk = weight * risk + (1.0 - weight) * fast_probabilities[full_rows]
            domains = self._linear(
                rows, embeddings, self.heads.domain_coef, self.heads.domain_intercept
            )
            for row, i in enumerate(full_rows):
                results[i] = self._assess_one(
                    conversations[i],
                    risk[row],
                    self.heads.decision.decide(risk[row]),
                    "risk head (embedding + TF-IDF)"
                    if static is None
                    else "risk heads (embedding + TF-IDF, averaged with the fast head)",
                    self._neighbour(self.heads.reference_embeddings, embeddings[row], "cosine"),
                    domains[row],
                    self.heads.domain_thresholds,
                )
        return [context for context in results if context is not None]

    def risk_probabilities(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """P(low), P(medium), P(high), P(critical) for user texts and their embeddings.

        These are the full path's probabilities: the full head's, averaged with the fast head's
        when the heads have one.
        """
        rows = self._word_tfidf().rows(texts)
        risk = _softmax(
            self._linear(rows, embeddings, self.heads.risk_coef, self.heads.risk_intercept)
        )
        static = self._static_embedder() if self.heads.fast_fitted else None
        if static is None:
            return risk
        weight = self.heads.ensemble_weight
        fast = self.fast_risk_probabilities(texts, static.embed(texts))
        return np.asarray(weight * risk + (1.0 - weight) * fast)

    def fast_risk_probabilities(self, texts: Sequence[str], statics: np.ndarray) -> np.ndarray:
        """The fast head's P(low) … P(critical) for user texts and their static embeddings."""
        return _softmax(
            self._fast_linear(
                self._char_tfidf().rows(texts),
                statics,
                self.heads.fast_risk_coef,
                self.heads.fast_risk_intercept,
            )
        )

    def fast_path_mask(self, inputs: Sequence[PromptOrConversation]) -> np.ndarray:
        """Which inputs the cascade would decide on the fast path (all ``False`` when it is off)."""
        texts = [user_text(as_conversation(item)) for item in inputs]
        static = self._static_embedder() if self.cascade and self.heads.has_fast_heads else None
        if static is None or not texts:
            return np.zeros(len(texts), dtype=bool)
        probabilities = self.fast_risk_probabilities(texts, static.embed(texts))
        return np.asarray(probabilities.max(axis=1) >= self.heads.cascade_threshold)

    def _static_embedder(self) -> StaticEmbedder | None:
        if not self._static_checked:
            self._static = StaticEmbedder.from_encoder(self.encoder)
            self._static_checked = True
        return self._static

    def _word_tfidf(self) -> SparseTfidf:
        if self._words is None:
            from cai2.context._training import make_vectorizer

            vocabulary = self.heads.tfidf_vocabulary
            self._words = SparseTfidf(make_vectorizer(), vocabulary, self.heads.tfidf_idf)
        return self._words

    def _char_tfidf(self) -> SparseTfidf:
        if self._chars is None:
            from cai2.context._training import make_char_vectorizer

            vocabulary = self.heads.fast_char_vocabulary
            self._chars = SparseTfidf(make_char_vectorizer(), vocabulary, self.heads.fast_char_idf)
        return self._chars

    def _linear(
        self,
        rows: list[tuple[np.ndarray, np.ndarray]],
        embeddings: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
    ) -> np.ndarray:
        """``[tfidf, embeddings] @ coef.T + intercept`` without building the dense row."""
        n_terms = len(self.heads.tfidf_vocabulary)
        sparse_part = SparseTfidf.dot(rows, coef[:, :n_terms])
        return np.asarray(sparse_part + embeddings @ coef[:, n_terms:].T + intercept)

    def _fast_linear(
        self,
        char_rows: list[tuple[np.ndarray, np.ndarray]],
        statics: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
    ) -> np.ndarray:
        """``[char tfidf, static] @ coef.T + intercept``."""
        n_chars = len(self.heads.fast_char_vocabulary)
        chars = SparseTfidf.dot(char_rows, coef[:, :n_chars])
        return np.asarray(chars + statics @ coef[:, n_chars:].T + intercept)

    def _neighbour(self, references: np.ndarray, vector: np.ndarray, kind: str) -> Evidence:
        heads = self.heads
        similarities = references @ vector
        neighbour = int(np.argmax(similarities))
        similarity = float(similarities[neighbour])
        text = heads.reference_text[neighbour]
        text = text if len(text) <= 90 else text[:87] + "..."
        return Evidence(
            source="classifier",
            detail=(
                f"nearest labelled example `{heads.reference_ids[neighbour]}` "
                f"({heads.reference_risk[neighbour]}, {kind} {similarity:.2f}): “{text}”"
            ),
            weight=similarity,
        )

    def _assess_one(
        self,
        conversation: list[Any],
        probabilities: np.ndarray,
        tier: RiskTier,
        head_name: str,
        neighbour: Evidence,
        domain_scores: np.ndarray,
        domain_thresholds: np.ndarray,
    ) -> Context:
        heads = self.heads
        evidence: list[Evidence] = []
        shown = ", ".join(
            f"P({t.value})={p:.2f}" for t, p in zip(TIERS, probabilities, strict=True)
        )
        evidence.append(
            Evidence(
                source="classifier",
                detail=f"{head_name}: {shown} → {tier.value}",
                weight=float(probabilities[tier.rank]),
            )
        )
        evidence.append(neighbour)

        chosen: dict[str, float] = {
            name: float(np.clip(score, 0.0, 1.0))
            for name, score, threshold in zip(
                heads.domain_names, domain_scores, domain_thresholds, strict=True
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
