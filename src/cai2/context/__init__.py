"""Context assessment: how risky a request is, which domains it touches and how complex it is.

>>> ctx = assess("How do I kill a Python process that ignores Ctrl+C?")
>>> ctx.risk, ctx.domains, ctx.complexity   # a RiskTier, domain names, a float in [0, 1]
>>> [e.detail for e in ctx.evidence]         # why: probabilities, nearest example, rules, ...

The default assessor combines heads on sentence embeddings from all-MiniLM-L6-v2 (its first four
blocks fine-tuned on the labelled training prompts, run in ONNX Runtime: :data:`DEFAULT_ENCODER`)
plus TF-IDF (trained on the project's own labelled prompt set, cached after
first use), explicit rules that raise the tier for plainly dangerous requests, complexity features,
and optionally an LLM behind any backend. Every part of the result comes with :class:`Evidence`.
"""

from cai2.context._assessor import ContextAssessor, FittedHeads, TierDecision
from cai2.context._complexity import FEATURE_NAMES, complexity_features
from cai2.context._dataset import (
    LabelledPrompt,
    PromptOrConversation,
    as_conversation,
    dataset_fingerprint,
    default_dataset_path,
    load_context_dataset,
    user_text,
)
from cai2.context._default import assess, heads_cache_path, load_default_assessor
from cai2.context._encoder import (
    MINILM_SAFETENSORS_SHA256,
    SentenceEncoder,
    embed_texts,
    load_sentence_encoder,
    sentence_encoder_dir,
    verify_sentence_encoder,
)
from cai2.context._finetune import FinetuneSettings, finetune_encoder, fit_finetuned_assessor
from cai2.context._llm import LLMRiskAssessor
from cai2.context._onnx import (
    DEFAULT_ENCODER,
    FROZEN_ENCODER,
    EncoderSpec,
    OnnxEncoder,
    load_context_encoder,
    load_onnx_encoder,
)
from cai2.context._rules import RULES, Rule, RuleHit, apply_rules
from cai2.context._types import Context, Evidence, RiskTier

__all__ = [
    "DEFAULT_ENCODER",
    "FEATURE_NAMES",
    "FROZEN_ENCODER",
    "MINILM_SAFETENSORS_SHA256",
    "RULES",
    "Context",
    "ContextAssessor",
    "EncoderSpec",
    "Evidence",
    "FinetuneSettings",
    "FittedHeads",
    "LLMRiskAssessor",
    "LabelledPrompt",
    "OnnxEncoder",
    "PromptOrConversation",
    "RiskTier",
    "Rule",
    "RuleHit",
    "SentenceEncoder",
    "TierDecision",
    "apply_rules",
    "as_conversation",
    "assess",
    "complexity_features",
    "dataset_fingerprint",
    "default_dataset_path",
    "embed_texts",
    "finetune_encoder",
    "fit_finetuned_assessor",
    "heads_cache_path",
    "load_context_dataset",
    "load_context_encoder",
    "load_default_assessor",
    "load_onnx_encoder",
    "load_sentence_encoder",
    "sentence_encoder_dir",
    "user_text",
    "verify_sentence_encoder",
]
