"""The `sl` stage: critique → revision over the training prompts, then SFT with LoRA on the result.

Artifacts in the stage folder: ``revisions.jsonl`` (one record per prompt, every step with its
principle; resumable), ``dataset/`` (the same records as a ``datasets`` dataset), ``sft.jsonl`` (the
prompt → final-reply pairs trained on) and ``model/`` (the merged model, loadable as ``hf:<path>``)
or ``adapter/`` (the LoRA adapter alone, with ``merge: false``). A re-run skips finished prompts
and, once ``model/`` (or ``adapter/``) is complete, the training too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from cai2.config import StrictModel
from cai2.constitution import load_constitution
from cai2.critique import (
    CritiqueEngine,
    CritiqueSettings,
    policy_by_name,
    records_to_dataset,
    sft_examples,
    training_items,
)
from cai2.errors import ConfigError, DataError
from cai2.pipeline._context import StageContext, StageMetrics
from cai2.pipeline._lora import (
    LoraTrainingSettings,
    cpu_trainer_arguments,
    load_for_training,
    lora_config,
    quiet_trainer,
    step_progress_callback,
    train_stage_model,
)

REVISIONS_FILE = "revisions.jsonl"
SFT_FILE = "sft.jsonl"
DONE_MARKER = "sft_done.json"


class SFTSettings(LoraTrainingSettings):
    """Supervised fine-tuning with a LoRA adapter (TRL ``SFTTrainer`` + PEFT), on the CPU."""

    epochs: float = Field(2.0, gt=0.0, description="Passes over the SFT examples.")


@dataclass(frozen=True)
class SFTResult:
    """What :func:`train_sft` did."""

    output: Path
    """``model/`` (merged, ``save_pretrained`` layout) or ``adapter/`` (PEFT adapter)."""
    merged: bool
    steps: int
    losses: list[float]
    changed_tensors: int
    """Weight tensors that differ from the base after training (adapter tensors if unmerged)."""
    epochs: float = 0.0
    """Passes over the examples the trainer completed (fractional; per process under
    ``accelerate launch``, where each process sees its share of every batch)."""

    @property
    def final_loss(self) -> float:
        """Loss logged at the last step (NaN if nothing was logged)."""
        return self.losses[-1] if self.losses else float("nan")


def train_sft(
    model_dir: str | Path,
    examples: Sequence[dict[str, Any]],
    output_dir: str | Path,
    settings: SFTSettings | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SFTResult:
    """Fine-tune the model in ``model_dir`` on prompt–completion ``examples`` with LoRA.

    Args:
        model_dir: A ``save_pretrained`` directory with safetensors weights and a chat template.
        examples: TRL conversational prompt–completion rows (``prompt`` and ``completion`` lists
            of messages); the loss covers the completion only.
        output_dir: Where ``model/`` or ``adapter/`` and the trainer's scratch folder go.
        settings: LoRA and optimiser settings.
        progress: Called as ``progress(step, total_steps)`` after every optimiser step.

    Raises:
        DataError: if there are no examples or a row lacks ``prompt``/``completion``.
    """
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    settings = settings or SFTSettings()
    if not examples:
        raise DataError("no SFT examples: every revision was dropped or rejected")
    for index, row in enumerate(examples):
        if "prompt" not in row or "completion" not in row:
            raise DataError(f"SFT example {index} needs `prompt` and `completion` message lists")
    output = Path(output_dir)
    tokenizer, model = load_for_training(model_dir)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    dataset = Dataset.from_list(
        [{"prompt": row["prompt"], "completion": row["completion"]} for row in examples]
    )
    args = SFTConfig(**cpu_trainer_arguments(settings, output))

    trainer = quiet_trainer(
        SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora_config(settings),
            callbacks=[step_progress_callback(progress)],
        )
    )
    trainer.train()
    losses = [float(log["loss"]) for log in trainer.state.log_history if "loss" in log]
    trained: Any = trainer.model
    if settings.merge:
        merged = trained.merge_and_unload()
        target = output / "model"
        merged.save_pretrained(target, safe_serialization=True)
        tokenizer.padding_side = "left"
        tokenizer.save_pretrained(target)
        changed = sum(
            not torch.equal(before[name], p.detach())
            for name, p in merged.named_parameters()
            if name in before
        )
    else:
        target = output / "adapter"
        trained.save_pretrained(target)
        tokenizer.save_pretrained(target)
        changed = sum(
            bool(p.detach().abs().sum() > 0)
            for name, p in trained.named_parameters()
            if "lora_B" in name
        )
    return SFTResult(
        target,
        settings.merge,
        int(trainer.state.global_step),
        losses,
        changed,
        epochs=float(trainer.state.epoch or 0.0),
    )


class SLConfig(StrictModel):
    """Settings of the `sl` stage."""

    prompts: list[str] = Field(
        default_factory=lambda: ["redteam", "helpful"],
        description="Training prompt sets (built-in names or `.jsonl` paths), interleaved.",
    )
    limit_per_set: int | None = Field(
        None, ge=1, description="Use only the first this-many prompts of each set."
    )
    policy: str = Field("cai-2.0", description="Critique policy: `cai-2.0` or `cai-1.0`.")
    rounds: int | None = Field(None, ge=1, le=16, description="Rounds; default: the policy's.")
    constitution: str | None = Field(
        None, description="Constitution name or path; default: the policy's."
    )
    critic: str | None = Field(
        None, description="Model spec of the critic / reviser; default: the student."
    )
    model: str | None = Field(
        None,
        description=(
            "Student model spec (an `hf:` model, or `@<stage id>` for an earlier stage's model); "
            "default: the recipe's model."
        ),
    )
    critique: CritiqueSettings = Field(
        default_factory=CritiqueSettings, description="Engine settings (sampling, judge, …)."
    )
    keep_unrevised_kinds: list[str] = Field(
        default_factory=lambda: ["helpful"],
        description="Prompt kinds trained on even without an accepted revision.",
    )
    unrevised_repeats: int = Field(
        1,
        ge=1,
        le=10,
        description=(
            "Times each kept unrevised reply (the helpfulness mix) appears in the SFT data; above "
            "1 when many fallback refusals would otherwise teach the student to refuse benign "
            "requests too."
        ),
    )
    fallback: Literal["none", "principle"] = Field(
        "none",
        description=(
            "What a harmful prompt with no accepted revision trains on: `none` leaves it out (the "
            "2022 recipe); `principle` trains on a refusal that names the principle its critique "
            "found broken (for students too small to revise themselves, as in the red-team loop)."
        ),
    )
    sft: SFTSettings = Field(default_factory=SFTSettings, description="LoRA SFT settings.")


def hf_model_directory(spec: str) -> Path:
    """The weights directory of an ``hf:`` spec (what SFT trains).

    Raises:
        ConfigError: for a spec of another backend.
    """
    from cai2.models import split_spec
    from cai2.models._hf import resolve_hf_directory

    backend, target = split_spec(spec)
    if backend != "hf":
        raise ConfigError(
            f"the `sl` stage trains the student with transformers, so `model` must be an `hf:` "
            f"spec (e.g. `hf:smollm2-135m`), not `{spec}`; the critic may use any backend",
            key="model",
        )
    return resolve_hf_directory(target)


def run_sl(context: StageContext, config: SLConfig) -> StageMetrics:
    """Critique and revise every training prompt, save the dataset, then fine-tune the student."""
    stage = context.stage
    spec = context.model_for(config.model)
    model_dir = hf_model_directory(spec)
    items = training_items(config.prompts, config.limit_per_set)
    policy = policy_by_name(config.policy, config.rounds, config.constitution)
    engine = CritiqueEngine(
        context.load_model(spec),
        policy,
        config.critique,
        critic=context.load_model(context.model_for(config.critic)) if config.critic else None,
    )
    total = len(items)
    records, stats = engine.run(
        items, stage.path(REVISIONS_FILE), progress=lambda done, _: context.progress(done, total)
    )
    if engine.judge_note:
        context.run.log(f"stage `{stage.name}`: {engine.judge_note}")
    records_to_dataset(records).save_to_disk(str(stage.path("dataset")))
    statements = None
    if config.fallback == "principle":
        flat = load_constitution(policy.constitution).flatten()
        statements = {p.id: p.statement for _, p, _ in flat.principles()}
    examples = sft_examples(
        records, config.keep_unrevised_kinds, statements, config.unrevised_repeats
    )
    stage.path(SFT_FILE).write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in examples), encoding="utf-8"
    )
    metrics: dict[str, Any] = {f"critique_{k}": v for k, v in stats.as_metrics().items()}
    metrics["sft_examples"] = len(examples)
    metrics["sft_fallback_refusals"] = sum(row["source"] == "principle" for row in examples)
    metrics["judge"] = engine.judge_name

    def train() -> SFTResult:
        return train_sft(model_dir, examples, stage.dir, config.sft)

    metrics.update(train_stage_model(stage.path(DONE_MARKER), "sft", train, ("changed_tensors",)))
    return metrics
