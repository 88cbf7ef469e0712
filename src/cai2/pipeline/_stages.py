"""The stages a recipe can name. A plain dict on purpose: stages are part of cai2, not plugins."""

from __future__ import annotations

from cai2.pipeline._context import StageDefinition
from cai2.pipeline._evaluate import EvaluateConfig, run_evaluate
from cai2.pipeline._generate import GenerateConfig, run_generate
from cai2.pipeline._pretrain import PretrainConfig, run_pretrain
from cai2.pipeline._rl import RLConfig, run_rl
from cai2.pipeline._sl import SLConfig, run_sl
from cai2.redteam._loop import RedTeamConfig
from cai2.redteam._stage import run_redteam

STAGES: dict[str, StageDefinition] = {
    "generate": StageDefinition(
        config_model=GenerateConfig,
        run=run_generate,
        description="Answer a prompt set with the recipe's model; responses saved as JSONL.",
    ),
    "pretrain": StageDefinition(
        config_model=PretrainConfig,
        run=run_pretrain,
        description="Score corpus segments against the constitution, tag, continue pre-training.",
    ),
    "sl": StageDefinition(
        config_model=SLConfig,
        run=run_sl,
        description="Critique → revision over the training prompts, then LoRA SFT on the result.",
    ),
    "rl": StageDefinition(
        config_model=RLConfig,
        run=run_rl,
        description="Sample replies, label them with the oversight hierarchy, DPO or GRPO + LoRA.",
    ),
    "redteam": StageDefinition(
        config_model=RedTeamConfig,
        run=run_redteam,
        description="Red-team rounds: attack, revise the failures, SFT + DPO, attack again.",
    ),
    "evaluate": StageDefinition(
        config_model=EvaluateConfig,
        run=run_evaluate,
        description="Evaluate models of the run on the same held-out items: harm, ASI, report.",
    ),
}
"""Stage name (as written in a recipe's ``stage:`` key) → its config model and run function."""
