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
from cai2.pipeline._preferences import (
    ConstitutionReward,
    PreferenceSettings,
    constitution_reward,
    label_candidates,
    preference_pairs,
    reply_label,
)
from cai2.pipeline._recipe import LoadedRecipe, PlannedStage, Recipe, StageEntry, load_recipe
from cai2.pipeline._rl import DPOResult, DPOSettings, RLConfig, run_rl, train_dpo
from cai2.pipeline._runner import run_recipe
from cai2.pipeline._stages import STAGES

__all__ = [
    "STAGES",
    "ConstitutionReward",
    "DPOResult",
    "DPOSettings",
    "GenerateConfig",
    "LoadedRecipe",
    "PlannedStage",
    "PreferenceSettings",
    "PromptItem",
    "RLConfig",
    "Recipe",
    "StageContext",
    "StageDefinition",
    "StageEntry",
    "StageProgress",
    "builtin_prompt_sets",
    "constitution_reward",
    "label_candidates",
    "load_prompts",
    "load_recipe",
    "preference_pairs",
    "reply_label",
    "run_generate",
    "run_recipe",
    "run_rl",
    "train_dpo",
]
