"""Use 1: the principle directions as a fast judge (one forward pass, no generation)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cai2.embeddings._activations import reply_activations
from cai2.embeddings._directions import ConstitutionalEmbeddings
from cai2.judges._types import JudgeBase, JudgeItem, PrincipleLike, Verdict


class EmbeddingProbeJudge(JudgeBase):
    """P(violation) per principle from the projection of the reply's hidden state.

    The judge's overall ``p_violation`` is the largest per-principle probability (a reply violates
    the constitution when it violates any judged principle). Asked about principles it has no
    direction for, it answers ``None`` for them, and ``None`` overall when it knows none of them.

    Args:
        embeddings: Trained directions, or the path of a file written by ``save``.
        model: The model they were trained on: a spec (default: the one recorded in the file) or a
            loaded ``hf`` model.
        name: Name recorded in verdicts.
    """

    def __init__(
        self,
        embeddings: ConstitutionalEmbeddings | str | Path,
        model: Any = None,
        name: str = "embedding-probe",
    ) -> None:
        if not isinstance(embeddings, ConstitutionalEmbeddings):
            embeddings = ConstitutionalEmbeddings.load(embeddings)
        if model is None or isinstance(model, str):
            from cai2.models import load_model

            model = load_model(model or embeddings.model_spec)
        embeddings.check_model(model)
        self.embeddings = embeddings
        self.model = model
        self.name = name

    def verdict_batch(
        self, items: Sequence[JudgeItem], principles: Sequence[PrincipleLike] = ()
    ) -> list[Verdict]:
        """Judge replies against ``principles`` (all known principles when empty)."""
        if not items:
            return []
        known = self.embeddings.principles
        asked = [p.id for p in principles] or list(known)
        judged = [pid for pid in asked if pid in known]
        if not judged:
            return [
                Verdict(
                    judge=self.name,
                    p_violation=None,
                    per_principle=dict.fromkeys(asked),
                    rationale="no learned direction for these principles",
                )
                for _ in items
            ]
        activations = reply_activations(
            self.model, [(i.conversation, i.response) for i in items], [self.embeddings.layer]
        )[0]
        probabilities = {
            pid: known[pid].probability(activations, self.embeddings.method) for pid in judged
        }
        verdicts = []
        for row in range(len(items)):
            per_principle: dict[str, float | None] = {
                pid: (float(probabilities[pid][row]) if pid in probabilities else None)
                for pid in asked
            }
            worst = max(judged, key=lambda pid: float(probabilities[pid][row]))
            p = float(probabilities[worst][row])
            verdicts.append(
                Verdict(
                    judge=self.name,
                    p_violation=p,
                    per_principle=per_principle,
                    rationale=f"highest projection: `{worst}` (P={p:.2f}, layer "
                    f"{self.embeddings.layer})",
                )
            )
        return verdicts
