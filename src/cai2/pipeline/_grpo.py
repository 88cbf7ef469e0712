"""Online stage 4: TRL ``GRPOTrainer`` + LoRA with the constitution's reward, on the CPU.

DPO learns from fixed pairs of replies sampled once. GRPO (Shao et al. 2024, "DeepSeekMath",
arXiv:2402.03300) samples a group of replies per prompt at every step from the current policy,
scores each with a reward function and pushes up the replies that beat their group's mean, so the
reward for *this* prompt decides the update. The reward here is :func:`constitution_reward`: on a
harmful prompt P(no violation), on a benign one 1 − P(refused), the same labels the DPO pairs are
built from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from cai2.errors import DataError
from cai2.pipeline._lora import (
    LoraTrainingSettings,
    cpu_trainer_arguments,
    load_for_training,
    lora_config,
    quiet_trainer,
    save_trained,
    step_progress_callback,
)


class GRPOSettings(LoraTrainingSettings):
    """Group relative policy optimisation with LoRA (TRL ``GRPOTrainer`` + PEFT), on the CPU."""

    num_generations: int = Field(4, ge=2, description="Replies sampled per prompt at each step.")
    max_completion_length: int = Field(48, ge=1, description="Tokens per sampled reply.")
    temperature: float = Field(0.7, gt=0.0, description="Sampling temperature of the replies.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling threshold.")
    beta: float = Field(
        0.04,
        ge=0.0,
        description=(
            "KL penalty toward the starting weights (the adapter switched off); 0 drops it. TRL's "
            "default is 0; a small one keeps a 135M model from drifting."
        ),
    )
    learning_rate: float = Field(2e-5, gt=0.0, description="Peak learning rate (linear decay).")
    epochs: float = Field(1.0, gt=0.0, description="Passes over the prompts.")
    batch_size: int = Field(
        8, ge=1, description="Replies per optimiser step; a multiple of `num_generations`."
    )


@dataclass(frozen=True)
class GRPOResult:
    """What :func:`train_grpo` did."""

    output: Path
    """``model/`` (merged, ``save_pretrained`` layout) or ``adapter/`` (PEFT adapter)."""
    merged: bool
    steps: int
    rewards: list[float]
    """Mean reward of the sampled replies at each logged step."""
    losses: list[float]

    @property
    def final_loss(self) -> float:
        """Loss logged at the last step (NaN if nothing was logged)."""
        return self.losses[-1] if self.losses else float("nan")

    @property
    def reward_start(self) -> float | None:
        """Mean reward over the first five logged steps."""
        return sum(self.rewards[:5]) / len(self.rewards[:5]) if self.rewards else None

    @property
    def reward_end(self) -> float | None:
        """Mean reward over the last five logged steps."""
        return sum(self.rewards[-5:]) / len(self.rewards[-5:]) if self.rewards else None


def train_grpo(
    model_dir: str | Path,
    prompts: Sequence[dict[str, Any]],
    reward: Callable[..., list[float | None]],
    output_dir: str | Path,
    settings: GRPOSettings | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> GRPOResult:
    """Train the model in ``model_dir`` with GRPO on ``prompts``, scored by ``reward``.

    Args:
        model_dir: A ``save_pretrained`` directory with safetensors weights and a chat template.
        prompts: Rows with ``prompt`` (a message list) and optionally ``kind`` (`harmful`,
            `helpful`, `other`), which TRL passes to the reward function as a column.
        reward: A TRL reward function, e.g. :func:`cai2.pipeline.constitution_reward`.
        output_dir: Where ``model/`` or ``adapter/`` and the trainer's scratch folder go.
        settings: GRPO, LoRA and optimiser settings.
        progress: Called as ``progress(step, total_steps)`` after every optimiser step.

    Raises:
        DataError: if there are no prompts, a row lacks ``prompt``, or ``batch_size`` is not a
            multiple of ``num_generations``.
    """
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    settings = settings or GRPOSettings()
    if not prompts:
        raise DataError("no prompts to train on")
    missing = [index for index, row in enumerate(prompts) if "prompt" not in row]
    if missing:
        raise DataError(f"prompt rows {missing[:5]} lack `prompt`")
    if settings.batch_size % settings.num_generations:
        raise DataError(
            f"grpo.batch_size ({settings.batch_size}) must be a multiple of "
            f"grpo.num_generations ({settings.num_generations})"
        )
    output = Path(output_dir)
    tokenizer, model = load_for_training(model_dir)
    dataset = Dataset.from_list(
        [{"prompt": row["prompt"], "kind": row.get("kind", "other")} for row in prompts]
    )
    arguments = cpu_trainer_arguments(settings, output)
    del arguments["max_length"]  # GRPO bounds the reply instead (max_completion_length)
    args = GRPOConfig(
        **arguments,
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        top_p=settings.top_p,
        beta=settings.beta,
    )
    trainer = quiet_trainer(
        GRPOTrainer(
            model=model,
            reward_funcs=[reward],
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora_config(settings),
            callbacks=[step_progress_callback(progress)],
        )
    )
    trainer.train()
    logs = trainer.state.log_history
    rewards = [float(log["reward"]) for log in logs if "reward" in log]
    losses = [float(log["loss"]) for log in logs if "loss" in log]
    trained: Any = trainer.model
    target = save_trained(trained, tokenizer, output, settings.merge)
    return GRPOResult(target, settings.merge, int(trainer.state.global_step), rewards, losses)
