"""What the SFT (stage 2) and DPO (stage 4) adapters share: CPU trainer settings, LoRA, progress."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from cai2.config import StrictModel


class LoraTrainingSettings(StrictModel):
    """LoRA and optimiser settings shared by `SFTSettings` and `DPOSettings`."""

    lora_r: int = Field(16, ge=1, le=512, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: str | list[str] = Field(
        "all-linear", description="Modules that get adapters: `all-linear` or a list of names."
    )
    learning_rate: float = Field(2e-4, gt=0.0, description="Peak learning rate (linear decay).")
    epochs: float = Field(2.0, gt=0.0, description="Passes over the training examples.")
    max_steps: int = Field(-1, ge=-1, description="Stop after this many steps; -1: use `epochs`.")
    batch_size: int = Field(8, ge=1, description="Examples per optimiser step (per device).")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Batches per optimiser step.")
    max_length: int = Field(384, ge=16, description="Tokens per example; longer ones are cut.")
    merge: bool = Field(
        True, description="Merge the adapter into the weights (`model/`); else save `adapter/`."
    )
    seed: int = Field(0, description="Seed of data order and adapter initialisation.")
    device: Literal["cpu", "auto"] = Field(
        "cpu",
        description=(
            "`cpu` trains on the CPU even where an accelerator exists (reproducible, the tested "
            "path); `auto` lets transformers/accelerate use a GPU when one is visible."
        ),
    )


def cpu_trainer_arguments(settings: LoraTrainingSettings, output: Path) -> dict[str, Any]:
    """Keyword arguments for a TRL config (`SFTConfig`, `DPOConfig`) that trains on the CPU."""
    return {
        "output_dir": str(output / "trainer"),
        "use_cpu": settings.device == "cpu",
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


def quiet_trainer(trainer: Any) -> Any:
    """``trainer`` without transformers' ``PrinterCallback``, which prints every log dict.

    With ``disable_tqdm`` (set by :func:`cpu_trainer_arguments`) transformers prints each logged
    step's metrics to stdout, in between cai2's own progress bars; the losses stay in
    ``trainer.state.log_history``, where cai2 reads them.
    """
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def train_once(marker: Path, train: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``train`` unless ``marker`` says it finished before; return its saved summary.

    ``train`` returns a JSON-ready summary of the training (output folder, steps, losses); it is
    written to ``marker`` only after training finished, so a stopped run trains again on resume.
    """
    from cai2.store import atomic_write_json, read_json

    if marker.exists():
        return dict(read_json(marker))
    summary = train()
    atomic_write_json(marker, summary)
    return summary


def train_stage_model(
    marker: Path, prefix: str, train: Callable[[], Any], extra: Sequence[str] = ()
) -> dict[str, Any]:
    """Train a stage's model once and return its metrics, ``<prefix>_…`` plus ``model_out``.

    ``train`` returns a result with ``output``, ``merged``, ``steps`` and ``final_loss``
    attributes (and those named in ``extra``); the summary is kept in ``marker`` by
    :func:`train_once`, and ``model_out`` (the spec later stages use as ``@<stage id>``) is set
    when the adapter was merged into a loadable model.
    """

    def run() -> dict[str, Any]:
        result = train()
        summary = {
            "output": str(result.output),
            "merged": result.merged,
            "steps": result.steps,
            "final_loss": result.final_loss,
        }
        return {**summary, **{name: getattr(result, name) for name in extra}}

    done = train_once(marker, run)
    metrics: dict[str, Any] = {f"{prefix}_{key}": value for key, value in done.items()}
    if done["merged"]:
        metrics["model_out"] = f"hf:{done['output']}"
    return metrics


def save_trained(trained: Any, tokenizer: Any, output: Path, merge: bool) -> Path:
    """Save a PEFT-wrapped model: merged into ``output/model`` or as ``output/adapter``.

    A merged model gets a left-padding tokenizer, as generation needs; the folder is returned.
    """
    if merge:
        target = output / "model"
        trained.merge_and_unload().save_pretrained(target, safe_serialization=True)
        tokenizer.padding_side = "left"
    else:
        target = output / "adapter"
        trained.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def load_for_training(model_dir: str | Path) -> tuple[Any, Any]:
    """(tokenizer, fp32 causal LM) from a ``save_pretrained`` folder, with a pad token set."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, use_safetensors=True, dtype=torch.float32
    )
    return tokenizer, model
