"""Judges: does a reply violate the constitution, and which of two replies is better?

One protocol (:class:`Judge`) with probabilities everywhere and ``None`` for "could not judge";
implementations: :class:`LLMJudge` (multiple-choice over any chat model), trained heads on sentence
embeddings (:class:`EmbeddingHeadJudge`) or hidden states (:class:`HiddenStateHeadJudge`), a
:class:`RefusalJudge`, and calibrated :class:`EnsembleJudge`. :func:`calibrate` measures any judge
against human labels such as PyRIT's (:func:`load_pyrit_scorer_eval`).
"""

from cai2.judges._calibration import (
    CalibrationReport,
    calibrate,
    cohen_kappa,
    expected_calibration_error,
    report_from_scores,
)
from cai2.judges._ensemble import EnsembleJudge
from cai2.judges._heads import EmbeddingHeadJudge, HiddenStateHeadJudge, LogisticHead
from cai2.judges._llm import LLMJudge
from cai2.judges._pyrit import LabelledResponse, heldout_split, load_pyrit_scorer_eval
from cai2.judges._refusal import RefusalJudge, refusal_probability
from cai2.judges._relevance import RelevanceGate, shares_content
from cai2.judges._training import JUDGES, JudgeSplits, build_judge, objective_splits, train_head
from cai2.judges._types import (
    Judge,
    JudgeItem,
    PrincipleLike,
    Verdict,
    preference_from_violations,
)

__all__ = [
    "JUDGES",
    "CalibrationReport",
    "EmbeddingHeadJudge",
    "EnsembleJudge",
    "HiddenStateHeadJudge",
    "Judge",
    "JudgeItem",
    "JudgeSplits",
    "LLMJudge",
    "LabelledResponse",
    "LogisticHead",
    "PrincipleLike",
    "RefusalJudge",
    "RelevanceGate",
    "Verdict",
    "build_judge",
    "calibrate",
    "cohen_kappa",
    "expected_calibration_error",
    "heldout_split",
    "load_pyrit_scorer_eval",
    "objective_splits",
    "preference_from_violations",
    "refusal_probability",
    "report_from_scores",
    "shares_content",
    "train_head",
]
