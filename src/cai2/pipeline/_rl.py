"""The `rl` stage (stage 4): AI feedback from the oversight hierarchy → preference pairs → DPO.

Artifacts in the stage folder: ``samples.jsonl`` (``samples_per_prompt`` sampled replies per prompt;
resumable, saved after every batch), ``labels.jsonl`` (each reply's soft label, P(violation),
who decided it and P(refused)), ``preferences.jsonl`` and ``preferences/`` (the (chosen, rejected)
pairs as JSONL with provenance and as a ``datasets`` dataset), ``provenance.json`` (model, scorer,
settings) and ``model/`` (merged, loadable as ``hf:<path>``) or ``adapter/`` (``merge: false``).
A re-run samples only missing prompts and skips the training once it finished.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from cai2.config import StrictModel, load_yaml_model
from cai2.errors import ConfigError, DataError
from cai2.models import Conversation
from cai2.oversight import OversightConfig, OversightHierarchy, default_oversight_config
from cai2.pipeline._context import StageContext, StageMetrics
from cai2.pipeline._grpo import GRPOResult, GRPOSettings, train_grpo
from cai2.pipeline._lora import (
    LoraTrainingSettings,
    cpu_trainer_arguments,
    load_for_training,
    lora_config,
    quiet_trainer,
    save_trained,
    step_progress_callback,
    train_stage_model,
)
from cai2.pipeline._preferences import (
    ConstitutionReward,
    PreferenceSettings,
    balance_benign_pairs,
    label_candidates,
    preference_pairs,
    refusal_negative_pairs,
)
from cai2.pipeline._sl import hf_model_directory

if TYPE_CHECKING:
    from cai2.critique import CritiqueItem

SAMPLES_FILE = "samples.jsonl"
LABELS_FILE = "labels.jsonl"
PREFERENCES_FILE = "preferences.jsonl"
PROVENANCE_FILE = "provenance.json"
DONE_MARKER = "dpo_done.json"
GRPO_DONE_MARKER = "grpo_done.json"


class DPOSettings(LoraTrainingSettings):
    """Direct preference optimisation with LoRA (TRL ``DPOTrainer`` + PEFT), on the CPU."""

    beta: float = Field(0.1, gt=0.0, description="DPO β: higher keeps closer to the reference.")
    loss_type: str = Field("sigmoid", description="TRL DPO loss (`sigmoid` is the DPO paper's).")
    sft_weight: float = Field(
        0.0,
        ge=0.0,
        description=(
            "Weight of a negative log-likelihood term on the chosen replies added to the DPO loss "
            "(RPO, Pang et al. 2024); 0 is plain DPO."
        ),
    )
    learning_rate: float = Field(5e-5, gt=0.0, description="Peak learning rate (linear decay).")
    epochs: float = Field(2.0, gt=0.0, description="Passes over the preference pairs.")
    batch_size: int = Field(4, ge=1, description="Pairs per optimiser step (per device).")
    max_length: int = Field(384, ge=16, description="Tokens of prompt + reply; longer ones cut.")


@dataclass(frozen=True)
class DPOResult:
    """What :func:`train_dpo` did."""

    output: Path
    """``model/`` (merged, ``save_pretrained`` layout) or ``adapter/`` (PEFT adapter)."""
    merged: bool
    steps: int
    losses: list[float]
    changed_lora_tensors: int
    """LoRA tensors whose values differ after training from right before it."""
    reward_accuracy: float | None
    """Share of pairs in the last logged step where the implicit reward ranked chosen first."""

    @property
    def final_loss(self) -> float:
        """Loss logged at the last step (NaN if nothing was logged)."""
        return self.losses[-1] if self.losses else float("nan")


def _loss_arguments(settings: DPOSettings) -> dict[str, Any]:
    """TRL's ``loss_type`` (and ``loss_weights`` when an SFT term is added) for ``settings``."""
    if settings.sft_weight == 0.0:
        return {"loss_type": [settings.loss_type]}
    return {"loss_type": [settings.loss_type, "sft"], "loss_weights": [1.0, settings.sft_weight]}


def train_dpo(
    model_dir: str | Path,
    pairs: Sequence[dict[str, Any]],
    output_dir: str | Path,
    settings: DPOSettings | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> DPOResult:
    """Train the model in ``model_dir`` on preference ``pairs`` with DPO and a LoRA adapter.

    The reference model is the same weights with the adapter switched off (TRL does this when it
    gets a ``peft_config``), so only one copy of the model is in memory.

    Args:
        model_dir: A ``save_pretrained`` directory with safetensors weights and a chat template.
        pairs: TRL conversational preference rows: ``prompt``, ``chosen`` and ``rejected`` message
            lists; other keys are ignored.
        output_dir: Where ``model/`` or ``adapter/`` and the trainer's scratch folder go.
        settings: DPO, LoRA and optimiser settings.
        progress: Called as ``progress(step, total_steps)`` after every optimiser step.

    Raises:
        DataError: if there are no pairs or a row lacks ``prompt``/``chosen``/``rejected``.
    """
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    settings = settings or DPOSettings()
    if not pairs:
        raise DataError(
            "no preference pairs: every prompt's replies were too close (lower "
            "`preferences.min_margin`, raise `samples_per_prompt` or the temperature)"
        )
    for index, row in enumerate(pairs):
        missing = [key for key in ("prompt", "chosen", "rejected") if key not in row]
        if missing:
            raise DataError(f"preference pair {index} lacks {missing}")
    output = Path(output_dir)
    tokenizer, model = load_for_training(model_dir)
    dataset = Dataset.from_list(
        [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in pairs]
    )
    args = DPOConfig(
        **cpu_trainer_arguments(settings, output),
        beta=settings.beta,
        **_loss_arguments(settings),
    )

    trainer = quiet_trainer(
        DPOTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora_config(settings),
            callbacks=[step_progress_callback(progress)],
        )
    )
    trained: Any = trainer.model
    before = {name: p.detach().clone() for name, p in trained.named_parameters() if "lora_" in name}
    trainer.train()
    logs = [log for log in trainer.state.log_history if "loss" in log]
    losses = [float(log["loss"]) for log in logs]
    accuracy = next(
        (float(log[k]) for log in reversed(logs) for k in log if k.endswith("rewards/accuracies")),
        None,
    )
    changed = sum(
        not torch.equal(before[name], p.detach())
        for name, p in trained.named_parameters()
        if name in before
    )
    target = save_trained(trained, tokenizer, output, settings.merge)
    return DPOResult(
        target, settings.merge, int(trainer.state.global_step), losses, changed, accuracy
    )


class RLConfig(StrictModel):
    """Settings of the `rl` stage."""

    prompts: list[str] = Field(
        default_factory=lambda: ["redteam", "helpful"],
        description="Training prompt sets (built-in names or `.jsonl` paths), interleaved.",
    )
    limit_per_set: int | None = Field(
        None, ge=1, description="Use only the first this-many prompts of each set."
    )
    model: str | None = Field(
        None,
        description=(
            "Policy model spec (an `hf:` model, or `@<stage id>` for an earlier stage's model, "
            "e.g. `@sl`); default: the recipe's model."
        ),
    )
    oversight: OversightConfig | str | None = Field(
        None,
        description=(
            "Hierarchy that labels the replies: inline, or the path of an oversight YAML; "
            "default: refusal detector → MiniLM head."
        ),
    )
    batch_prompts: int = Field(
        8, ge=1, description="Prompts sampled per model call; samples are saved after each."
    )
    context_prompt: bool = Field(
        False,
        description=(
            "Start every sampled request with a tag naming the context assessment's risk tier "
            "(`[risk: high] …`, see `context_prefixes`); the pairs keep it, so DPO can learn to "
            "read it. Serve the trained model with the same tag."
        ),
    )
    preferences: PreferenceSettings = Field(
        default_factory=PreferenceSettings, description="Sampling, labelling and pairing."
    )
    dpo: DPOSettings = Field(default_factory=DPOSettings, description="DPO + LoRA settings.")
    method: Literal["dpo", "grpo"] = Field(
        "dpo",
        description=(
            "`dpo`: sample replies once, pair them by the hierarchy's labels, train with DPO "
            "(offline). `grpo`: sample from the current policy at every step and reward each reply "
            "with the same label (online, `train_grpo`); `preferences` then only says which prompt "
            "kinds are benign and how their replies are scored, and `grpo` holds the settings."
        ),
    )
    grpo: GRPOSettings = Field(
        default_factory=GRPOSettings, description="GRPO + LoRA settings (with `method: grpo`)."
    )


def context_prefixes(prompts: Sequence[str]) -> list[str]:
    """The tag ``RLConfig.context_prompt`` puts before each request: ``[risk: <tier>] ``.

    The tier is the default context assessor's (:func:`cai2.context.load_default_assessor`), so a
    model trained with these tags must be served with them too. The tag goes in the user turn,
    not a system turn: a system turn would replace the chat template's default one, under which
    the stage-2 model learned its behaviour.
    """
    from cai2.context import load_default_assessor

    contexts = load_default_assessor().assess_batch(list(prompts))
    return [f"[risk: {context.risk.value}] " for context in contexts]


def _hierarchy(context: StageContext, config: RLConfig) -> OversightHierarchy:
    if config.oversight is None:
        return OversightHierarchy(default_oversight_config())
    if isinstance(config.oversight, str):
        return OversightHierarchy(
            load_yaml_model(context.resolve_path(config.oversight), OversightConfig)
        )
    return OversightHierarchy(config.oversight)


def run_rl(context: StageContext, config: RLConfig) -> StageMetrics:
    """Sample replies, label them through the hierarchy, build preference pairs, train with DPO."""
    from datasets import Dataset

    from cai2.critique import training_items

    stage = context.stage
    spec = context.model_for(config.model)
    model_dir = hf_model_directory(spec)
    items = training_items(config.prompts, config.limit_per_set)
    if config.method == "grpo":
        return _run_grpo(context, config, spec, model_dir, items)
    settings = config.preferences
    k = settings.samples_per_prompt
    with stage.open_jsonl(SAMPLES_FILE, id_key="id") as out:
        todo = [item for item in items if item.id not in out.done_ids]
        context.progress(len(items) - len(todo), len(items))
        if todo:
            model = context.load_model(spec)
            for start in range(0, len(todo), config.batch_prompts):
                batch = todo[start : start + config.batch_prompts]
                prefixes = [""] * len(batch)
                if config.context_prompt:
                    prefixes = context_prefixes([item.prompt for item in batch])
                conversations: list[Conversation] = [
                    [{"role": "user", "content": prefix + item.prompt}]
                    for item, prefix in zip(batch, prefixes, strict=True)
                    for _ in range(k)
                ]
                params = settings.params.model_copy(
                    update={
                        "seed": None
                        if settings.params.seed is None
                        else settings.params.seed + start
                    }
                )
                generations = model.generate(conversations, params)
                for index, item in enumerate(batch):
                    out.append(
                        {
                            "id": item.id,
                            "kind": item.kind,
                            "prompt": item.prompt,
                            "context_prefix": prefixes[index],
                            "responses": [g.text for g in generations[index * k : (index + 1) * k]],
                            "model": spec,
                            "params": params.model_dump(mode="json"),
                        }
                    )
                context.progress(len(items) - len(todo) + start + len(batch), len(items))
    wanted = {item.id for item in items}
    samples = [record for record in stage.read_jsonl(SAMPLES_FILE) if record["id"] in wanted]
    hierarchy = _hierarchy(context, config)
    labelled = label_candidates(samples, hierarchy, settings)
    stage.path(LABELS_FILE).write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labelled), encoding="utf-8"
    )
    pairs, counts = preference_pairs(labelled, settings.min_margin)
    if settings.refusal_negatives:
        borrowed, borrowed_counts = refusal_negative_pairs(labelled, pairs, settings)
        pairs += borrowed
        counts.update(borrowed_counts)
    if settings.balance_benign:
        pairs, balance_counts = balance_benign_pairs(pairs, settings)
        counts.update(balance_counts)
    # The judges saw the request alone; the policy is trained on what it was sampled with.
    prefixes_by_id = {record["id"]: record.get("context_prefix") for record in samples}
    for pair in pairs:
        prefix = prefixes_by_id.get(pair["id"])
        if prefix:
            *earlier, last = pair["prompt"]
            pair["prompt"] = [*earlier, {**last, "content": prefix + last["content"]}]
    stage.path(PREFERENCES_FILE).write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pairs), encoding="utf-8"
    )
    if pairs:
        Dataset.from_list(pairs).save_to_disk(str(stage.path("preferences")))
    stage.write_json(
        PROVENANCE_FILE,
        {
            "model": spec,
            "prompts": config.prompts,
            "levels": [level.model_dump(mode="json") for level in hierarchy.config.levels],
            "judges": [judge.name for judge in hierarchy.judges],
            "preferences": settings.model_dump(mode="json"),
        },
    )
    metrics: dict[str, Any] = {
        "prompts": len(items),
        "replies": sum(len(r["responses"]) for r in samples),
        "pairs": len(pairs),
        **counts,
        "mean_margin": round(sum(p["margin"] for p in pairs) / len(pairs), 4) if pairs else None,
    }

    def train() -> DPOResult:
        return train_dpo(model_dir, pairs, stage.dir, config.dpo)

    extra = ("changed_lora_tensors", "reward_accuracy")
    metrics.update(train_stage_model(stage.path(DONE_MARKER), "dpo", train, extra))
    return metrics


def _run_grpo(
    context: StageContext,
    config: RLConfig,
    spec: str,
    model_dir: Path,
    items: Sequence[CritiqueItem],
) -> StageMetrics:
    """The `rl` stage with ``method: grpo``: online GRPO against the hierarchy's reward."""
    if config.context_prompt:
        raise ConfigError(
            "`context_prompt` works with `method: dpo` only: the GRPO reward would judge the "
            "tagged request"
        )
    stage = context.stage
    hierarchy = _hierarchy(context, config)
    reward = ConstitutionReward(hierarchy, config.preferences)
    prompts = [
        {"prompt": [{"role": "user", "content": item.prompt}], "kind": item.kind} for item in items
    ]
    stage.write_json(
        PROVENANCE_FILE,
        {
            "model": spec,
            "method": "grpo",
            "prompts": config.prompts,
            "levels": [level.model_dump(mode="json") for level in hierarchy.config.levels],
            "judges": [judge.name for judge in hierarchy.judges],
            "preferences": config.preferences.model_dump(mode="json"),
            "grpo": config.grpo.model_dump(mode="json"),
        },
    )

    def train() -> GRPOResult:
        return train_grpo(model_dir, prompts, reward, stage.dir, config.grpo)

    extra = ("reward_start", "reward_end")
    trained = train_stage_model(stage.path(GRPO_DONE_MARKER), "grpo", train, extra)
    return {"prompts": len(prompts), **trained}


def preference_rows(path: str | Path) -> list[dict[str, Any]]:
    """Read a ``preferences.jsonl`` written by the stage (for training elsewhere)."""
    source = Path(path)
    rows = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{source}:{number}: invalid JSON ({exc.msg})") from exc
    return rows
