"""The `pretrain` stage (stage 1): constitutional pre-training by conditional training.

Korbak et al. 2023, "Pretraining Language Models with Human Preferences" (ICML), compared five
objectives; *conditional training* — prepend a control token saying whether a segment meets the
preference, train the ordinary causal-LM loss, and condition on the good token at inference — gave
the best trade-off between less undesirable text and kept capability. This stage applies it with the
constitution as the preference: the judges score every corpus segment, the segment gets
``<|aligned|>`` or ``<|misaligned|>`` in front, and training continues on the tagged corpus (LoRA by
default, full fine-tuning optionally). With ``conditional: false`` the same corpus is trained on
without tags: the usual continued pre-training this is compared with.

Artifacts in the stage folder: ``generated.jsonl`` (model answers to the training prompts;
resumable), ``segments.jsonl`` (the built corpus), ``scored.jsonl`` (every segment with its
P(violation) and tag; resumable), ``corpus.json`` (counts), and ``model/`` (merged, loadable as
``hf:<path>``; its chat template starts every conversation with ``<|aligned|>``, so any later stage
generates conditioned on it) or ``adapter/``. A re-run skips the finished steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from cai2.config import StrictModel
from cai2.errors import DataError
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
from cai2.pipeline._pretrain_corpus import (
    ALIGNED_TOKEN,
    CONTROL_TOKENS,
    CorpusSettings,
    build_corpus,
    evaluation_prompt_hashes,
    iter_dataset,
    iter_generated,
    iter_text_file,
    score_corpus,
    tag_text,
)
from cai2.pipeline._sl import hf_model_directory

GENERATED_FILE = "generated.jsonl"
SEGMENTS_FILE = "segments.jsonl"
SCORED_FILE = "scored.jsonl"
CORPUS_FILE = "corpus.json"
DONE_MARKER = "pretrain_done.json"


class PretrainSettings(LoraTrainingSettings):
    """Continued causal-LM training on the (tagged) corpus, on the CPU."""

    full: bool = Field(
        False, description="Train every weight instead of a LoRA adapter (+ the new token rows)."
    )
    epochs: float = Field(1.0, gt=0.0, description="Passes over the corpus.")
    learning_rate: float = Field(2e-4, gt=0.0, description="Peak learning rate (linear decay).")
    max_length: int = Field(256, ge=16, description="Tokens per segment; longer ones are cut.")
    group_by_length: bool = Field(
        True, description="Batch segments of similar length together (less padding)."
    )


def conditioned(text: str) -> str:
    """``text`` behind the aligned control token: how to prompt a conditionally trained model."""
    return ALIGNED_TOKEN + text


def aligned_chat_template(template: str) -> str:
    """A chat template that writes ``<|aligned|>`` before every conversation."""
    return template if template.startswith(ALIGNED_TOKEN) else ALIGNED_TOKEN + template


def add_control_tokens(tokenizer: Any, model: Any) -> list[int]:
    """Add the control tokens to ``tokenizer`` and rows for them to ``model``; return their ids.

    The new embedding rows start at the mean of the old ones (``mean_resizing``), so the tokens
    begin as an "average" token rather than noise.
    """
    tokenizer.add_tokens(list(CONTROL_TOKENS), special_tokens=True)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    return [int(tokenizer.convert_tokens_to_ids(token)) for token in CONTROL_TOKENS]


@dataclass(frozen=True)
class PretrainResult:
    """What :func:`train_pretrain` did."""

    output: Path
    """``model/`` (merged or fully trained) or ``adapter/`` (PEFT adapter)."""
    merged: bool
    conditional: bool
    steps: int
    losses: list[float]
    changed_tensors: int
    """Weight tensors that differ from the base after training (adapter tensors if unmerged)."""
    text_tokens: int
    """Corpus tokens trained on per epoch, control tokens not counted (the token budget)."""
    control_token_ids: list[int]
    control_rows_changed: bool
    """Whether the embedding rows of the control tokens moved during training."""

    @property
    def final_loss(self) -> float:
        """Loss logged at the last step (NaN if nothing was logged)."""
        return self.losses[-1] if self.losses else float("nan")

    @property
    def first_loss(self) -> float | None:
        """Loss logged at the first step (``None`` if nothing was logged)."""
        return self.losses[0] if self.losses else None


def train_pretrain(
    model_dir: str | Path,
    scored_path: str | Path,
    output_dir: str | Path,
    settings: PretrainSettings | None = None,
    *,
    conditional: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> PretrainResult:
    """Continue causal-LM training of the model in ``model_dir`` on a scored corpus.

    Args:
        model_dir: A ``save_pretrained`` directory with safetensors weights and a chat template.
        scored_path: JSONL of scored segments (``text`` and ``tag``), read as an Arrow-backed
            ``datasets`` dataset, so it is not held in memory.
        output_dir: Where ``model/`` or ``adapter/`` and the trainer's scratch folder go.
        settings: Training settings.
        conditional: Prepend each segment's control token and make the saved chat template start
            with ``<|aligned|>``; ``False`` trains on the bare text (the untagged baseline).
        progress: Called as ``progress(step, total_steps)`` after every optimiser step.

    Raises:
        DataError: if the corpus file is missing or empty.
    """
    import torch
    from datasets import load_dataset
    from transformers import (
        DataCollatorForLanguageModeling,
        Trainer,
        TrainingArguments,
    )

    settings = settings or PretrainSettings()
    scored = Path(scored_path)
    if not scored.is_file() or scored.stat().st_size == 0:
        raise DataError(f"{scored}: no scored corpus to train on")
    output = Path(output_dir)
    tokenizer, model = load_for_training(model_dir)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    token_ids: list[int] = []
    if conditional:
        token_ids = add_control_tokens(tokenizer, model)
        tokenizer.chat_template = aligned_chat_template(str(tokenizer.chat_template))
    embeddings: Any = model.get_input_embeddings()
    rows_before = embeddings.weight[token_ids].detach().clone()

    corpus = load_dataset("json", data_files=str(scored), split="train")
    text_tokens = int(sum(corpus["tokens"]))
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

    def tokenize(row: dict[str, Any]) -> dict[str, Any]:
        text = tag_text(row) if conditional else row["text"]
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: settings.max_length - 1]
        return {"input_ids": ids + eos, "length": len(ids) + len(eos)}

    dataset = corpus.map(tokenize, remove_columns=corpus.column_names)
    arguments = cpu_trainer_arguments(settings, output)
    arguments.pop("max_length")  # a TRL option; segments are cut in `tokenize` above
    if settings.group_by_length:
        arguments["train_sampling_strategy"] = "group_by_length"
    # transformers' Trainer rather than TRL's SFTTrainer: TRL's fused LM head reads the head's
    # weight directly and would skip the trainable rows PEFT adds for the control tokens.
    model_to_train: Any = model
    if not settings.full:
        from peft import get_peft_model

        peft_config = lora_config(settings)
        # Only the control tokens' rows of the (tied) embedding train beside the adapter.
        peft_config.trainable_token_indices = token_ids or None
        model_to_train = get_peft_model(model, peft_config)
    trainer = quiet_trainer(
        Trainer(
            model=model_to_train,
            args=TrainingArguments(**arguments),
            train_dataset=dataset,
            data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
            callbacks=[step_progress_callback(progress)],
        )
    )
    trainer.train()
    losses = [float(log["loss"]) for log in trainer.state.log_history if "loss" in log]
    trained: Any = trainer.model
    merged = settings.full or settings.merge
    if merged:
        final = trained if settings.full else trained.merge_and_unload()
        target = output / "model"
        final.save_pretrained(target, safe_serialization=True)
        tokenizer.padding_side = "left"
        tokenizer.save_pretrained(target)
        rows_after = final.get_input_embeddings().weight[token_ids].detach()
        rows_changed = bool(token_ids) and not torch.equal(rows_before, rows_after)
        changed = sum(
            name not in before
            or before[name].shape != p.shape
            or not torch.equal(before[name], p.detach())
            for name, p in final.named_parameters()
        )
    else:
        target = output / "adapter"
        trained.save_pretrained(target)
        tokenizer.save_pretrained(target)
        changed = sum(
            bool(p.detach().abs().sum() > 0)
            for name, p in trained.named_parameters()
            if "lora_B" in name or "trainable_tokens_delta" in name
        )
        rows_changed = any(
            bool(p.detach().abs().sum() > 0)
            for name, p in trained.named_parameters()
            if "trainable_tokens_delta" in name
        )
    return PretrainResult(
        output=target,
        merged=merged,
        conditional=conditional,
        steps=int(trainer.state.global_step),
        losses=losses,
        changed_tensors=changed,
        text_tokens=text_tokens,
        control_token_ids=token_ids,
        control_rows_changed=rows_changed,
    )


class PretrainConfig(StrictModel):
    """Settings of the `pretrain` stage."""

    corpus: CorpusSettings = Field(
        default_factory=lambda: CorpusSettings(generated=["redteam", "helpful"]),
        description="Corpus sources and segmenting (default: answers to the training prompts).",
    )
    judge: str = Field(
        "ensemble",
        description=(
            "Registered judge that scores each segment (`ensemble`, `refusal`, `embedding-head`, "
            "`llm-mc`, …); its P(violation) decides the tag."
        ),
    )
    threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="P(violation) at or above which a segment is misaligned."
    )
    unjudged: Literal["misaligned", "aligned", "drop"] = Field(
        "misaligned", description="Tag of segments the judge could not judge (or drop them)."
    )
    conditional: bool = Field(
        True, description="Tag segments with control tokens; `false`: untagged baseline."
    )
    model: str | None = Field(
        None,
        description=(
            "Model spec to train (an `hf:` model, or `@<stage id>`); default: the recipe's model. "
            "It also writes the `generated` answers."
        ),
    )
    training: PretrainSettings = Field(
        default_factory=PretrainSettings, description="Training settings (LoRA by default)."
    )


def corpus_documents(
    context: StageContext, config: PretrainConfig, spec: str, excluded: set[bytes]
) -> list[Any]:
    """Document iterators of every configured source, in order: files, datasets, generated."""
    settings = config.corpus
    sources: list[Any] = [
        iter_text_file(context.resolve_path(name), settings.text_field) for name in settings.files
    ]
    sources += [
        iter_dataset(str(context.resolve_path(name)), settings.dataset_split, settings.text_field)
        for name in settings.datasets
    ]
    if settings.generated:
        sets = [
            str(context.resolve_path(s)) if s.endswith(".jsonl") else s for s in settings.generated
        ]
        sources.append(
            iter_generated(
                context.load_model(spec),
                sets,
                settings.generated_limit_per_set,
                settings.generation,
                context.stage.path(GENERATED_FILE),
                excluded=excluded,
                progress=context.progress,
            )
        )
    if not sources:
        raise DataError(
            "the `pretrain` corpus has no source: set `corpus.files`, `corpus.datasets` or "
            "`corpus.generated`"
        )
    return sources


def _chain(sources: list[Any]) -> Any:
    for source in sources:
        yield from source


def run_pretrain(context: StageContext, config: PretrainConfig) -> StageMetrics:
    """Build and score the corpus, then continue training the model on it (tagged or not)."""
    from transformers import AutoTokenizer

    from cai2.judges import build_judge
    from cai2.store import atomic_write_json, read_json

    stage = context.stage
    spec = context.model_for(config.model)
    model_dir = hf_model_directory(spec)
    corpus_summary = stage.path(CORPUS_FILE)
    if corpus_summary.exists():
        summary = dict(read_json(corpus_summary))
    else:
        excluded = evaluation_prompt_hashes()
        documents: Any = _chain(corpus_documents(context, config, spec, excluded))
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        stats = build_corpus(
            documents,
            tokenizer,
            config.corpus,
            stage.path(SEGMENTS_FILE),
            excluded=excluded,
        )
        judge = build_judge(config.judge)
        counts = score_corpus(
            stage.path(SEGMENTS_FILE),
            judge,
            stage.path(SCORED_FILE),
            threshold=config.threshold,
            unjudged=config.unjudged,
            progress=context.progress,
        )
        summary = {**stats.as_metrics(), **counts, "judge": getattr(judge, "name", config.judge)}
        atomic_write_json(corpus_summary, summary)
    metrics: dict[str, Any] = {f"corpus_{key}": value for key, value in summary.items()}

    def train() -> PretrainResult:
        return train_pretrain(
            model_dir,
            stage.path(SCORED_FILE),
            stage.dir,
            config.training,
            conditional=config.conditional,
            progress=context.progress,
        )

    extra = ("conditional", "first_loss", "changed_tensors", "text_tokens", "control_rows_changed")
    metrics.update(train_stage_model(stage.path(DONE_MARKER), "pretrain", train, extra))
    return metrics
