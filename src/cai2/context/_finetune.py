"""Fine-tuning MiniLM's transformer blocks on the labelled prompts before the heads are fitted.

MiniLM was trained for semantic similarity, not for risk, so a harmful request and a harmless one
on the same topic can sit close together in its embedding space. A short
contrastive step (the SetFit recipe: Tunstall et al. 2022, "Efficient Few-Shot Learning Without
Prompts", arXiv:2209.11055) moves prompts of the same tier together and prompts of different tiers
apart before the same linear heads are fitted on the new embeddings. The loss is
sentence-transformers' batch semi-hard triplet loss (Schroff et al. 2015, FaceNet) over batches
drawn by tier label; in out-of-fold side experiments on the training split it scored at least as
well as the batch-all loss and better than the batch-hard one (not in the results file).

The token-embedding table stays frozen, so the cascade's static fast path (which averages that
table) reads the same vectors as before. For honest out-of-fold predictions (the regularisation,
the decision thresholds and the cascade threshold are all chosen on them) every fold gets its own
encoder, fine-tuned on that fold's training part only; the shipped encoder is then fine-tuned on
the whole training split. The fold encoders live in a temporary directory and are deleted.
"""

from __future__ import annotations

import copy
import hashlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cai2.context._assessor import ContextAssessor
from cai2.context._dataset import LabelledPrompt, user_text
from cai2.context._encoder import embed_texts
from cai2.context._onnx import EncoderSpec, OnnxEncoder, load_onnx_encoder, open_onnx_encoder
from cai2.errors import ConfigError, DataError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class FinetuneSettings:
    """How the encoder is fine-tuned (defaults chosen out-of-fold on the training split).

    Attributes:
        epochs: Passes over the training prompts.
        learning_rate: Peak AdamW learning rate (10 % linear warm-up, then linear decay).
        batch_size: Prompts per batch; batches are drawn so each holds several of a tier.
        seed: Seed of the trainer (shuffling, dropout).
    """

    epochs: float = 5.0
    learning_rate: float = 5e-5
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ConfigError(f"fine-tuning epochs must be positive, got {self.epochs}")
        if not 0 < self.learning_rate < 1:
            raise ConfigError(
                f"fine-tuning learning_rate must be in (0, 1), got {self.learning_rate}"
            )
        if self.batch_size < 4:
            raise ConfigError(f"fine-tuning batch_size must be at least 4, got {self.batch_size}")

    @property
    def key(self) -> str:
        """A stable text form, part of cache keys."""
        return ",".join(f"{name}={value}" for name, value in sorted(asdict(self).items()))


def finetune_encoder(
    base: Any,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    layers: int,
    settings: FinetuneSettings = FinetuneSettings(),
) -> Any:
    """A copy of ``base`` cut to its first ``layers`` blocks and fine-tuned on ``texts``.

    Args:
        base: A mean-pooling BERT ``SentenceTransformer`` (MiniLM); it is not modified.
        texts: Training prompts (user turns).
        labels: Their tier ranks (0 low … 3 critical).
        layers: Transformer blocks to keep (the rest are dropped before training).
        settings: Epochs, learning rate, batch size and seed.

    Returns:
        The fine-tuned ``SentenceTransformer`` in eval mode.
    """
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import BatchSemiHardTripletLoss
    from sentence_transformers.training_args import BatchSamplers
    from transformers.trainer_callback import PrinterCallback

    class _QuietTrainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict: dict[str, Any]) -> None:
            """No model card is written, so its data (and its progress bar) are skipped."""

    if len(texts) != len(labels):
        raise DataError(f"{len(texts)} texts but {len(labels)} labels")
    if len(set(labels)) < 2:
        raise DataError("fine-tuning needs prompts of at least two tiers")
    model = copy.deepcopy(base)
    transformer = model[0].auto_model
    available = len(transformer.encoder.layer)
    if not 1 <= layers <= available:
        raise ConfigError(f"cannot keep {layers} layers of a model with {available}")
    transformer.encoder.layer = transformer.encoder.layer[:layers]
    transformer.config.num_hidden_layers = layers
    # The static fast path averages this table; keeping it fixed keeps that path unchanged.
    transformer.get_input_embeddings().weight.requires_grad_(False)
    data = Dataset.from_dict({"sentence": list(texts), "label": [int(y) for y in labels]})
    with tempfile.TemporaryDirectory(prefix="cai2-finetune-") as scratch:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=settings.epochs,
            per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            warmup_steps=0.1,
            seed=settings.seed,
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            batch_sampler=BatchSamplers.GROUP_BY_LABEL,
            use_cpu=True,
            disable_tqdm=True,
        )
        trainer = _QuietTrainer(
            model=model,
            args=arguments,
            train_dataset=data,
            loss=BatchSemiHardTripletLoss(model),
        )
        # With the tqdm bar off, transformers prints the metrics dict instead; callers report
        # progress themselves.
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return model.eval()


def weights_digest(model: Any) -> str:
    """sha256 over a model's parameter names and values (identifies fine-tuned weights)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def finetuned_onnx_encoder(model: Any, spec: EncoderSpec, cache_dir: Path) -> OnnxEncoder:
    """``model`` (from :func:`finetune_encoder`) exported for ``spec`` into ``cache_dir``."""
    if not spec.finetuned or spec.runtime != "onnx":
        raise ConfigError(f"expected a fine-tuned onnx spec, got {spec.label}")
    return load_onnx_encoder(
        spec, encoder=model, cache_dir=cache_dir, weights_id=weights_digest(model)
    )


def open_finetuned_encoder(path: Path, spec: EncoderSpec, base: Any) -> OnnxEncoder:
    """A saved fine-tuned graph at ``path``, with ``base``'s tokenizer and (frozen) token table."""
    if not path.exists():
        raise ConfigError(f"the fine-tuned encoder {path} is missing; delete its heads to retrain")
    return open_onnx_encoder(path, spec, base)


def fit_finetuned_assessor(
    base: Any,
    spec: EncoderSpec,
    examples: Sequence[LabelledPrompt],
    *,
    cache_dir: Path,
    settings: FinetuneSettings = FinetuneSettings(),
    target_recall: float = 0.97,
    folds: int = 5,
    seed: int = 0,
    progress: Progress | None = None,
    meta: dict[str, Any] | None = None,
    c_grid: Sequence[float] | None = None,
) -> ContextAssessor:
    """Like :meth:`ContextAssessor.fit`, with the encoder fine-tuned on the ``train`` split first.

    Each of the ``folds`` out-of-fold passes reads an encoder fine-tuned on that fold's training
    part; the returned assessor reads one fine-tuned on the whole training split, saved as an ONNX
    graph in ``cache_dir`` (its file name is in ``heads.meta["encoder_file"]``).

    Args:
        base: The packaged MiniLM ``SentenceTransformer`` (:func:`load_sentence_encoder`).
        spec: Layers and int8 of the encoder; must have ``finetuned=True``.
        examples: Labelled prompts; only ``split == "train"`` rows are used.
        cache_dir: Where the shipped graph is written.
        settings: Fine-tuning hyperparameters.
        target_recall, folds, seed, progress, meta, c_grid: As for :meth:`ContextAssessor.fit`.
    """
    from cai2.context._training import fold_splits

    if not spec.finetuned:
        raise ConfigError(
            f"fit_finetuned_assessor needs a spec with finetuned=True, got {spec.label}"
        )
    say = progress or (lambda _message: None)
    train = [example for example in examples if example.split == "train"]
    texts = [user_text(e.conversation) for e in train]
    labels = [e.risk.rank for e in train]
    splits = fold_splits(train, folds, seed)
    fold_embeddings = []
    with tempfile.TemporaryDirectory(prefix="cai2-fold-encoders-") as scratch:
        for fold, (train_index, valid_index) in enumerate(splits, start=1):
            say(f"fine-tuning the encoder for fold {fold}/{folds} ({len(train_index)} prompts)")
            model = finetune_encoder(
                base,
                [texts[i] for i in train_index],
                [labels[i] for i in train_index],
                layers=spec.layers,
                settings=settings,
            )
            encoder = finetuned_onnx_encoder(model, spec, Path(scratch))
            fold_embeddings.append(
                (
                    embed_texts(encoder, [texts[i] for i in train_index]),
                    embed_texts(encoder, [texts[i] for i in valid_index]),
                )
            )
    say(f"fine-tuning the encoder on all {len(texts)} training prompts")
    model = finetune_encoder(base, texts, labels, layers=spec.layers, settings=settings)
    encoder = finetuned_onnx_encoder(model, spec, cache_dir)
    return ContextAssessor.fit(
        encoder,
        train,
        target_recall=target_recall,
        folds=folds,
        seed=seed,
        progress=say,
        meta={"encoder_file": encoder.path.name, "finetune": asdict(settings), **(meta or {})},
        c_grid=c_grid,
        fold_embeddings=fold_embeddings,
    )
