"""The stages a recipe can name. A plain dict on purpose: stages are part of cai2, not plugins."""

from __future__ import annotations

from cai2.pipeline._context import StageDefinition
from cai2.pipeline._generate import GenerateConfig, run_generate
from cai2.pipeline._rl import RLConfig, run_rl
from cai2.pipeline._sl import SLConfig, run_sl

STAGES: dict[str, StageDefinition] = {
    "generate": StageDefinition(
        config_model=GenerateConfig,
        run=run_generate,
        description="Answer a prompt set with the recipe's model; responses saved as JSONL.",
    ),
    "sl": StageDefinition(
        config_model=SLConfig,
        run=run_sl,
        description="Critique → revision over the training prompts, then LoRA SFT on the result.",
    ),
    "rl": StageDefinition(
        config_model=RLConfig,
        run=run_rl,
        description="Sample replies, label them through the oversight hierarchy, DPO with LoRA.",
    ),
}
"""Stage name (as written in a recipe's ``stage:`` key) → its config model and run function."""
