"""What the SFT (stage 2) and DPO (stage 4) adapters share: CPU trainer settings, LoRA, progress."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class LoraTrainingSettings(Protocol):
    """The fields `SFTSettings` and `DPOSettings` have in common."""

    lora_r: int
    lora_alpha: int
    lora_dropout: float
    target_modules: str | list[str]
    learning_rate: float
    epochs: float
    max_steps: int
    batch_size: int
    gradient_accumulation_steps: int
    max_length: int
    seed: int


def cpu_trainer_arguments(settings: LoraTrainingSettings, output: Path) -> dict[str, Any]:
    """Keyword arguments for a TRL config (`SFTConfig`, `DPOConfig`) that trains on the CPU."""
    return {
        "output_dir": str(output / "trainer"),
        "use_cpu": True,
        # TRL turns on bf16 and gradient checkpointing by default; on a CPU bf16 is emulated and
        # checkpointing recomputes activations, each several times slower for a 135M model.
        "bf16": False,
        "gradient_checkpointing": False,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "per_device_train_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "learning_rate": settings.learning_rate,
        "max_length": settings.max_length,
        "seed": settings.seed,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def lora_config(settings: LoraTrainingSettings) -> Any:
    """The PEFT LoRA config for a causal LM."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=settings.target_modules,
        task_type="CAUSAL_LM",
    )


def step_progress_callback(progress: Callable[[int, int], None] | None) -> Any:
    """A transformers callback that reports (step, total steps) to ``progress``."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if progress is not None:
                progress(int(state.global_step), int(state.max_steps))

    return _Progress()
