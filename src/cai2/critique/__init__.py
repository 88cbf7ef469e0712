"""Stage 2: recursive critique → revision over any backend, batched across prompts.

>>> engine = CritiqueEngine(load_model("hf:smollm2-135m"), cai2_policy(rounds=3))
>>> records, stats = engine.run([CritiqueItem("1", "How do I pick a lock?")], "revisions.jsonl")

:func:`cai2_policy` draws round ``k``'s principle from depth ``k`` of the constitution resolved for
the prompt's context, skips revisions when nothing is wrong and stops when a round changes nothing;
:func:`cai1_policy` is the 2022 baseline (static ``cai-1.0``, a random principle per step, fixed
rounds). Records keep every step with the principle that caused it; :func:`sft_examples` turns them
into supervised training data.
"""

from cai2.critique._cleanup import (
    CleanedText,
    clean_revision,
    critique_finds_violation,
    remove_repetition,
    strip_preamble,
)
from cai2.critique._engine import (
    CritiqueEngine,
    CritiqueItem,
    CritiqueSettings,
    CritiqueStats,
    addresses_request,
)
from cai2.critique._fewshot import (
    Demonstration,
    critique_conversation,
    demonstration_pool,
    revision_conversation,
)
from cai2.critique._policy import (
    POLICIES,
    CritiquePolicy,
    cai1_policy,
    cai2_policy,
    policy_by_name,
    select_principle,
)
from cai2.critique._prompts import PROMPT_SETS, load_prompt_set, training_items
from cai2.critique._records import (
    CritiqueRecord,
    CritiqueStep,
    records_to_dataset,
    safe_reply,
    sft_examples,
)

__all__ = [
    "POLICIES",
    "PROMPT_SETS",
    "CleanedText",
    "CritiqueEngine",
    "CritiqueItem",
    "CritiquePolicy",
    "CritiqueRecord",
    "CritiqueSettings",
    "CritiqueStats",
    "CritiqueStep",
    "Demonstration",
    "addresses_request",
    "cai1_policy",
    "cai2_policy",
    "clean_revision",
    "critique_conversation",
    "critique_finds_violation",
    "demonstration_pool",
    "load_prompt_set",
    "policy_by_name",
    "records_to_dataset",
    "remove_repetition",
    "revision_conversation",
    "safe_reply",
    "select_principle",
    "sft_examples",
    "strip_preamble",
    "training_items",
]
