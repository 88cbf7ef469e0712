"""The ``hf`` backend: a transformers causal LM on the CPU, batched with left padding.

This is the backend training code builds on: :attr:`HFChatModel.model` and
:attr:`HFChatModel.tokenizer` are the plain transformers objects that TRL and PEFT wrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from cai2.config import StrictModel, validate_with_location
from cai2.errors import ConfigError, DataError, ModelError
from cai2.models._embedded import EMBEDDED_NAME, embedded_model_dir, tiny_model_dir
from cai2.models._stopping import ProgressCallback, trim_at_stop
from cai2.models._types import Conversation, Generation, GenerationParams

DEFAULT_HF_BATCH_SIZE = 32
"""Generation batch size of the ``hf`` backend, measured in bench/generation.py."""


class HFOptions(StrictModel):
    """Options of the ``hf`` backend (``load_model("hf:...", **options)``)."""

    batch_size: int = Field(
        DEFAULT_HF_BATCH_SIZE,
        ge=1,
        le=1024,
        description="Conversations generated together; larger batches use the CPU better.",
    )
    score_batch_size: int = Field(
        8, ge=1, le=1024, description="Sequences per forward pass in `logprobs`/`hidden_states`."
    )
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="Weight and activation dtype; float32 is fastest on most CPUs."
    )


def resolve_hf_directory(target: str) -> Path:
    """The model directory an ``hf:`` target names: ``smollm2-135m``, ``tiny`` or a path."""
    if target == EMBEDDED_NAME:
        return embedded_model_dir()
    if target == "tiny":
        return tiny_model_dir()
    directory = Path(target).expanduser()
    if not (directory / "config.json").is_file():
        raise ConfigError(
            f"`hf:{target}`: {directory} is not a model directory (no config.json); use "
            f"`hf:{EMBEDDED_NAME}`, `hf:tiny` or a directory written by `save_pretrained`"
        )
    return directory


def load_hf_model(
    target: str, *, progress: ProgressCallback | None = None, **options: Any
) -> HFChatModel:
    """Factory registered as the ``hf`` backend."""
    settings = validate_with_location(HFOptions, options)
    return HFChatModel(
        resolve_hf_directory(target), spec=f"hf:{target}", options=settings, progress=progress
    )


class HFChatModel:
    """A transformers model behind the :class:`~cai2.models.LocalChatModel` protocol.

    Args:
        directory: A directory with safetensors weights, a tokenizer and a chat template.
        spec: The spec string reported as :attr:`spec`.
        options: Backend options.
        progress: Called as ``progress(done, total)`` after each generation batch.
    """

    def __init__(
        self,
        directory: Path,
        *,
        spec: str | None = None,
        options: HFOptions | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.options = options or HFOptions()
        self.spec = spec or f"hf:{directory}"
        self.directory = directory
        self.progress = progress
        # Typed loosely: TRL and PEFT may wrap or replace these objects.
        self.tokenizer: Any
        self.model: Any
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(directory)
            # use_safetensors: never fall back to pickle files, which can run arbitrary code.
            self.model = AutoModelForCausalLM.from_pretrained(
                directory, use_safetensors=True, dtype=getattr(torch, self.options.dtype)
            )
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"could not load the model in {directory} ({exc}); cai2 loads only safetensors "
                f"weights, so re-save it with `save_pretrained(..., safe_serialization=True)`"
            ) from exc
        if self.tokenizer.chat_template is None:
            raise ModelError(f"the tokenizer in {directory} has no chat template")
        self.model.eval()
        # Left padding keeps every prompt's last token at the end, where generation continues.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._eos_ids = _eos_token_ids(self.model, self.tokenizer)

    @property
    def hidden_size(self) -> int:
        """Width of the hidden states :meth:`hidden_states` returns."""
        return int(self.model.config.hidden_size)

    @property
    def num_layers(self) -> int:
        """Number of transformer layers (hidden-state layers are 0 … ``num_layers``)."""
        return int(self.model.config.num_hidden_layers)

    def format_chat(self, conversation: Conversation, *, add_generation_prompt: bool) -> str:
        """The conversation rendered with the model's chat template."""
        text = self.tokenizer.apply_chat_template(
            list(conversation), add_generation_prompt=add_generation_prompt, tokenize=False
        )
        return str(text)

    def _encode(self, text: str) -> list[int]:
        # The chat template already writes the special tokens the model expects.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(
        self, conversations: Sequence[Conversation], params: GenerationParams | None = None
    ) -> list[Generation]:
        """Generate one assistant reply per conversation, in order.

        Conversations are sorted by prompt length and generated ``batch_size`` at a time, so each
        batch needs little padding. With ``temperature > 0`` each batch is sampled under the seed
        ``params.seed + batch index``, so a call is reproducible.
        """
        import torch

        params = params or GenerationParams()
        prompts = [
            self._encode(self.format_chat(c, add_generation_prompt=True)) for c in conversations
        ]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Generation | None] = [None] * len(prompts)
        batch_size = self.options.batch_size
        config = self._generation_config(params)
        for batch_index, start in enumerate(range(0, len(order), batch_size)):
            members = order[start : start + batch_size]
            batch = self.tokenizer.pad(
                {"input_ids": [prompts[i] for i in members]}, padding=True, return_tensors="pt"
            )
            with torch.no_grad(), torch.random.fork_rng():
                if params.seed is not None:
                    torch.manual_seed(params.seed + batch_index)
                output = self.model.generate(
                    **batch,
                    generation_config=config,
                    tokenizer=self.tokenizer if params.stop else None,
                )
            new_tokens = output[:, batch["input_ids"].shape[1] :].tolist()
            for member, tokens in zip(members, new_tokens, strict=True):
                results[member] = self._finish(tokens, len(prompts[member]), params)
            if self.progress is not None:
                self.progress(min(start + batch_size, len(order)), len(order))
        return [r for r in results if r is not None]

    def _generation_config(self, params: GenerationParams) -> Any:
        from transformers import GenerationConfig

        sampling = params.temperature > 0
        return GenerationConfig(
            max_new_tokens=params.max_tokens,
            do_sample=sampling,
            temperature=params.temperature if sampling else None,
            top_p=params.top_p if sampling else None,
            # top_k=0 switches off transformers' default top-k of 50: GenerationParams offers
            # temperature and nucleus sampling only, as OpenAI's API does.
            top_k=0 if sampling else None,
            stop_strings=list(params.stop) or None,
            eos_token_id=self._eos_ids,
            pad_token_id=self.tokenizer.pad_token_id,
        )

    def _finish(
        self, tokens: list[int], prompt_tokens: int, params: GenerationParams
    ) -> Generation:
        end = next((i for i, t in enumerate(tokens) if t in self._eos_ids), len(tokens))
        text = self.tokenizer.decode(tokens[:end], skip_special_tokens=True)
        text, stopped = trim_at_stop(text, params.stop)
        ended_by_eos = end < len(tokens) and not stopped
        if stopped or ended_by_eos:
            reason: Literal["stop", "length"] = "stop"
        else:
            reason = "length"
        completion_tokens = end + 1 if ended_by_eos else end
        return Generation(
            text=text,
            finish_reason=reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    def logprobs(
        self, conversations: Sequence[Conversation], continuations: Sequence[str]
    ) -> list[float]:
        """Sum of token log-probabilities of each continuation as the assistant's reply."""
        import torch

        if len(conversations) != len(continuations):
            raise DataError(
                f"logprobs got {len(conversations)} conversations and {len(continuations)} "
                f"continuations; pass one continuation per conversation"
            )
        items = []
        for conversation, continuation in zip(conversations, continuations, strict=True):
            prompt = self._encode(self.format_chat(conversation, add_generation_prompt=True))
            items.append((prompt, self._encode(continuation) if continuation else []))
        scores: list[float] = []
        step = self.options.score_batch_size
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            batch = self._right_padded([p + c for p, c in chunk])
            with torch.no_grad():
                logits = self.model(**batch).logits
            for row, (prompt_ids, continuation_ids) in enumerate(chunk):
                if not continuation_ids:
                    scores.append(0.0)
                    continue
                # Logits at position j predict token j + 1.
                end = len(prompt_ids) + len(continuation_ids) - 1
                positions = torch.arange(len(prompt_ids) - 1, end)
                rows = torch.log_softmax(logits[row, positions].float(), dim=-1)
                picked = rows.gather(1, torch.tensor(continuation_ids)[:, None])
                scores.append(float(picked.sum()))
        return scores

    def hidden_states(self, conversations: Sequence[Conversation], layer: int = -1) -> np.ndarray:
        """Mean-pooled hidden state of each conversation at ``layer``: shape (n, hidden_size).

        Layer 0 is the embedding output, ``num_layers`` (or -1) the last layer. The conversation is
        rendered with the chat template, without a generation prompt.
        """
        import torch

        if not -(self.num_layers + 1) <= layer <= self.num_layers:
            raise ConfigError(
                f"`layer` {layer} is out of range for a model with {self.num_layers} layers; "
                f"use 0 … {self.num_layers} or a negative index from -1"
            )
        encoded = [
            self._encode(self.format_chat(c, add_generation_prompt=False)) for c in conversations
        ]
        pooled = np.zeros((len(encoded), self.hidden_size), dtype=np.float32)
        step = self.options.score_batch_size
        for start in range(0, len(encoded), step):
            batch = self._right_padded(encoded[start : start + step])
            with torch.no_grad():
                output = self.model(**batch, output_hidden_states=True, logits_to_keep=1)
            states = output.hidden_states[layer].float()
            mask = batch["attention_mask"][:, :, None].float()
            means = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            pooled[start : start + len(means)] = means.numpy()
        return pooled

    def _right_padded(self, sequences: list[list[int]]) -> dict[str, Any]:
        import torch

        length = max(1, *(len(s) for s in sequences))
        pad = int(self.tokenizer.pad_token_id)
        input_ids = torch.full((len(sequences), length), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            input_ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
            attention_mask[row, : len(sequence)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def __repr__(self) -> str:
        return f"HFChatModel({self.spec!r}, batch_size={self.options.batch_size})"


def _eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Token ids that end a reply: the tokenizer's EOS and any the generation config adds."""
    ids = {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if not ids:
        raise ModelError("the tokenizer defines no end-of-sequence token")
    return sorted(ids)
