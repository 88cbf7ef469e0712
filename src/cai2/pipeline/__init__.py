"""The training pipeline: recipes of stages run in order, recorded in the run store, resumable.

``cai2 run recipe.yaml`` (or :func:`run_recipe`) validates the recipe and each stage's config, then
runs the stages listed in :data:`STAGES`, skipping finished ones when a run is resumed.
"""

from cai2.pipeline._context import StageContext, StageDefinition, StageProgress
from cai2.pipeline._generate import (
    GenerateConfig,
    PromptItem,
    builtin_prompt_sets,
    load_prompts,
    run_generate,
)
from cai2.pipeline._grpo import GRPOResult, GRPOSettings, train_grpo
from cai2.pipeline._preferences import (
    ConstitutionReward,
    PreferenceSettings,
    balance_benign_pairs,
    constitution_reward,
    label_candidates,
    preference_pairs,
    refusal_negative_pairs,
    reply_label,
)
from cai2.pipeline._pretrain import (
    PretrainConfig,
    PretrainResult,
    PretrainSettings,
    aligned_chat_template,
    conditioned,
    run_pretrain,
    train_pretrain,
)
from cai2.pipeline._pretrain_corpus import (
    ALIGNED_TOKEN,
    MISALIGNED_TOKEN,
    CorpusSettings,
    build_corpus,
    score_corpus,
)
from cai2.pipeline._recipe import LoadedRecipe, PlannedStage, Recipe, StageEntry, load_recipe
from cai2.pipeline._rl import DPOResult, DPOSettings, RLConfig, run_rl, train_dpo
from cai2.pipeline._runner import run_recipe
from cai2.pipeline._stages import STAGES

__all__ = [
    "ALIGNED_TOKEN",
    "MISALIGNED_TOKEN",
    "STAGES",
    "ConstitutionReward",
    "CorpusSettings",
    "DPOResult",
    "DPOSettings",
    "GRPOResult",
    "GRPOSettings",
    "GenerateConfig",
    "LoadedRecipe",
    "PlannedStage",
    "PreferenceSettings",
    "PretrainConfig",
    "PretrainResult",
    "PretrainSettings",
    "PromptItem",
    "RLConfig",
    "Recipe",
    "StageContext",
    "StageDefinition",
    "StageEntry",
    "StageProgress",
    "aligned_chat_template",
    "balance_benign_pairs",
    "build_corpus",
    "builtin_prompt_sets",
    "conditioned",
    "constitution_reward",
    "label_candidates",
    "load_prompts",
    "load_recipe",
    "preference_pairs",
    "refusal_negative_pairs",
    "reply_label",
    "run_generate",
    "run_pretrain",
    "run_recipe",
    "run_rl",
    "score_corpus",
    "train_dpo",
    "train_grpo",
    "train_pretrain",
]
