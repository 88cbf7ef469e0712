"""Use 3: soft-prompt principle embeddings — principles as learned input vectors (prompt tuning).

Prompt tuning (Lester et al. 2021, "The Power of Scale for Parameter-Efficient Prompt Tuning",
arXiv:2104.08691) learns ``n`` virtual token embeddings that are put in front of every input while
the model's own weights stay frozen. Here they are trained on the principle examples' *compliant*
replies (``violates: false`` rows of the train split: refusals of harmful requests, and answers to
benign ones for ``helpful.no_needless_refusal``), starting from the embedding of the principles'
statements, so the vectors come to stand for "answer as the constitution asks" in the model's own
input space. Training is TRL's ``SFTTrainer`` with a PEFT ``PromptTuningConfig``; the result is a
PEFT adapter folder plus ``soft_prompt.json`` naming the constitution and principles it came from.

At inference :func:`soft_prompted` puts the adapter around a loaded ``hf:`` model for the length
of a ``with`` block; every ``generate`` call inside it is prefixed by the learned vectors.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from cai2.config import StrictModel
from cai2.embeddings._activations import require_local_model
from cai2.embeddings._data import PrincipleExample
from cai2.errors import DataError, ModelError

META_FILE = "soft_prompt.json"


class SoftPromptSettings(StrictModel):
    """Prompt-tuning settings (CPU)."""

    virtual_tokens: int = Field(16, ge=1, le=256, description="Learned vectors put before inputs.")
    learning_rate: float = Field(
        3e-2, gt=0.0, description="Peak learning rate; prompt tuning needs far more than LoRA."
    )
    epochs: float = Field(3.0, gt=0.0, description="Passes over the compliant examples.")
    batch_size: int = Field(8, ge=1, description="Examples per optimiser step.")
    max_length: int = Field(256, ge=16, description="Tokens per example; longer ones are cut.")
    init_from_statements: bool = Field(
        True,
        description="Start from the embedding of the principles' statements (else random).",
    )
    seed: int = Field(0, description="Seed of data order and initialisation.")


@dataclass(frozen=True)
class SoftPromptResult:
    """What :func:`train_soft_prompt` did."""

    output: Path
    steps: int
    losses: list[float]
    examples: int
    changed: bool
    """Whether the learned vectors differ from their initial values."""

    @property
    def final_loss(self) -> float:
        """Loss logged at the last step (NaN if nothing was logged)."""
        return self.losses[-1] if self.losses else float("nan")


def soft_prompt_rows(
    examples: Sequence[PrincipleExample], principles: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """TRL prompt–completion rows from the compliant replies of ``principles`` (all when empty).

    Raises:
        DataError: when no compliant example is left.
    """
    wanted = set(principles)
    rows = [
        {
            "prompt": [{"role": "user", "content": e.prompt}],
            "completion": [{"role": "assistant", "content": e.response}],
        }
        for e in examples
        if not e.violates and (not wanted or e.principle in wanted)
    ]
    if not rows:
        raise DataError(
            "no compliant examples to tune the soft prompt on"
            + (f" for {', '.join(sorted(wanted))}" if wanted else "")
        )
    return rows


def own_answer_rows(
    model: Any, prompts: Sequence[str], *, max_tokens: int = 96
) -> list[dict[str, Any]]:
    """Prompt–completion rows of ``model``'s own greedy answers to benign ``prompts``.

    Mixed into the training data, they tell the soft prompt to leave benign answering as it was
    (helpfulness data is mixed in for the same reason in the 2022 method); empty answers are
    left out.
    """
    from cai2.models import GenerationParams, Message

    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=0)
    replies = model.generate([[Message(role="user", content=p)] for p in prompts], params)
    return [
        {
            "prompt": [{"role": "user", "content": prompt}],
            "completion": [{"role": "assistant", "content": reply.text.strip()}],
        }
        for prompt, reply in zip(prompts, replies, strict=True)
        if reply.text.strip()
    ]


def train_soft_prompt(
    model_dir: str | Path,
    examples: Sequence[PrincipleExample],
    output_dir: str | Path,
    *,
    statements: dict[str, str],
    constitution: str,
    settings: SoftPromptSettings | None = None,
    extra_rows: Sequence[dict[str, Any]] = (),
    progress: Callable[[int, int], None] | None = None,
) -> SoftPromptResult:
    """Learn soft-prompt vectors for the principles in ``statements`` and save the adapter.

    Args:
        model_dir: A ``save_pretrained`` folder (the weights stay frozen).
        examples: Principle examples; the compliant ones of the principles in ``statements`` are
            the training data (pass the train split only).
        output_dir: Where ``adapter/`` (PEFT) and the trainer's scratch folder go.
        statements: Principle id → statement; the ids select the examples, the statements seed
            the vectors.
        constitution: Name (or path) of the constitution the principles come from (recorded).
        settings: Prompt-tuning settings.
        extra_rows: More prompt–completion rows trained on alongside (e.g.
            :func:`own_answer_rows` for benign prompts).
        progress: Called as ``progress(step, total_steps)`` after every optimiser step.
    """
    import torch
    from datasets import Dataset
    from peft import PromptTuningConfig, PromptTuningInit
    from trl import SFTConfig, SFTTrainer

    from cai2.pipeline._lora import (
        LoraTrainingSettings,
        cpu_trainer_arguments,
        load_for_training,
        quiet_trainer,
        step_progress_callback,
    )
    from cai2.store import atomic_write_json

    settings = settings or SoftPromptSettings()
    principle_rows = soft_prompt_rows(examples, list(statements))
    rows = [*principle_rows, *extra_rows]
    output = Path(output_dir)
    tokenizer, model = load_for_training(model_dir)
    init_text = " ".join(statements[p] for p in sorted(statements))
    config = PromptTuningConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=settings.virtual_tokens,
        prompt_tuning_init=(
            PromptTuningInit.TEXT if settings.init_from_statements else PromptTuningInit.RANDOM
        ),
        prompt_tuning_init_text=init_text if settings.init_from_statements else None,
        tokenizer_name_or_path=str(model_dir) if settings.init_from_statements else None,
    )
    trainer_settings = LoraTrainingSettings(
        learning_rate=settings.learning_rate,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        max_length=settings.max_length,
        seed=settings.seed,
    )
    trainer = quiet_trainer(
        SFTTrainer(
            model=model,
            args=SFTConfig(**cpu_trainer_arguments(trainer_settings, output)),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=config,
            callbacks=[step_progress_callback(progress)],
        )
    )
    tuned: Any = trainer.model
    encoder = tuned.prompt_encoder["default"].embedding.weight
    initial = encoder.detach().clone()
    trainer.train()
    changed = not torch.equal(initial, encoder.detach())
    target = output / "adapter"
    tuned.save_pretrained(target)
    losses = [float(log["loss"]) for log in trainer.state.log_history if "loss" in log]
    meta = {
        "constitution": constitution,
        "principles": sorted(statements),
        "virtual_tokens": settings.virtual_tokens,
        "examples": len(rows),
        "principle_examples": len(principle_rows),
        "extra_examples": len(extra_rows),
        "steps": int(trainer.state.global_step),
        "final_loss": losses[-1] if losses else None,
        "base_model": str(model_dir),
    }
    atomic_write_json(target / META_FILE, meta)
    return SoftPromptResult(target, int(trainer.state.global_step), losses, len(rows), changed)


def read_soft_prompt_meta(adapter: str | Path) -> dict[str, Any]:
    """The ``soft_prompt.json`` of a trained adapter folder.

    Raises:
        DataError: when the folder is not a soft-prompt adapter written by cai2.
    """
    path = Path(adapter) / META_FILE
    if not path.is_file():
        raise DataError(
            f"{adapter} is not a soft-prompt adapter (no {META_FILE}); train one with "
            "`cai2 embed soft-train`"
        )
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from exc


@contextmanager
def soft_prompted(model: Any, adapter: str | Path) -> Iterator[dict[str, Any]]:
    """Prefix every generation of ``model`` (a loaded ``hf:`` model) with the learned vectors.

    The base model is restored on exit, also when the block raises. Yields the adapter's metadata.

    Raises:
        DataError: when ``adapter`` is not a soft-prompt adapter.
        ModelError: when ``model`` is not a local transformers model or the adapter does not fit it.
    """
    from peft import PeftModel

    require_local_model(model)
    meta = read_soft_prompt_meta(adapter)
    base = model.model
    try:
        wrapped = PeftModel.from_pretrained(base, str(adapter))
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(
            f"the soft prompt in {adapter} (trained on {meta.get('base_model')}) does not fit "
            f"{getattr(model, 'spec', 'this model')}: {exc}"
        ) from exc
    wrapped.eval()
    model.model = wrapped
    try:
        with warnings.catch_warnings():
            # PEFT drops position ids and counts positions from the first virtual token. With
            # rotary positions the prompt's own tokens keep their distances; only the gap between
            # the virtual tokens and a left-padded prompt grows by its padding, so a reply can
            # differ slightly with the other prompts in its batch. The warning would repeat on
            # every call.
            warnings.filterwarnings("ignore", message="Position ids are not supported")
            yield meta
    finally:
        model.model = base
