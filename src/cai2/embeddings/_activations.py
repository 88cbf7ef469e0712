"""Residual-stream activations of replies: one forward pass, every layer, pooled over the reply.

Pooling over the reply's tokens only (not the prompt's) makes a direction describe the reply, which
is what a judge scores and what steering changes while the model writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cai2.errors import ModelError
from cai2.models import Conversation, Message


def require_local_model(model: Any) -> Any:
    """``model`` if it exposes transformers internals (the ``hf`` backend), else a ModelError."""
    for attribute in ("model", "tokenizer", "format_chat"):
        if not hasattr(model, attribute):
            raise ModelError(
                f"constitutional embeddings need a local transformers model (`hf:` spec); "
                f"`{getattr(model, 'spec', model)!r}` has no `{attribute}`"
            )
    return model


def decoder_layers(model: Any) -> Any:
    """The list of decoder blocks of an ``hf`` chat model (``len`` = number of layers)."""
    network = require_local_model(model).model
    decoder = network.get_decoder() if hasattr(network, "get_decoder") else None
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise ModelError(f"cannot find the decoder layers of {type(network).__name__}")
    return layers


class _EnoughLayers(Exception):
    """Raised by the hook of the deepest wanted layer: the blocks above it need not run."""


def _capture(model: Any, layer: int, into: dict[int, Any], stop: bool = False) -> Any:
    """Hook that stores hidden-state layer ``layer`` (0 = embeddings) of the next forward pass.

    Hooks rather than ``output_hidden_states``: they see the residual stream as the next block
    does, after any steering hook registered earlier on the same block, and the last layer before
    the final norm, like every other layer.
    """
    module = model.model.get_input_embeddings() if layer == 0 else decoder_layers(model)[layer - 1]

    def store(_module: Any, _inputs: Any, output: Any) -> None:
        into[layer] = (output[0] if isinstance(output, tuple) else output).detach()
        if stop:
            raise _EnoughLayers

    return module.register_forward_hook(store)


def reply_activations(
    model: Any,
    items: Sequence[tuple[Conversation, str]],
    layers: Sequence[int] | None = None,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Mean hidden state over each reply's tokens at each layer (each block's output).

    Args:
        model: An ``hf`` chat model (:class:`~cai2.models.HFChatModel`).
        items: ``(conversation, reply)`` pairs.
        layers: Hidden-state layers to keep (0 = embeddings, ``num_layers`` = last); all if None.
        batch_size: Sequences per forward pass.
        progress: Called as ``progress(done, total)`` after each batch.

    Returns:
        Array of shape ``(len(layers), len(items), hidden_size)``.
    """
    import torch

    require_local_model(model)
    network = model.model
    tokenizer = model.tokenizer
    num_layers = int(network.config.num_hidden_layers)
    keep = list(range(num_layers + 1)) if layers is None else list(layers)
    last = max(keep, default=0)
    sequences: list[tuple[list[int], int]] = []
    for conversation, reply in items:
        prefix = model.format_chat(conversation, add_generation_prompt=True)
        full = model.format_chat(
            [*conversation, Message(role="assistant", content=reply)], add_generation_prompt=False
        )
        prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
        full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        # The reply starts where the generation prompt ends (at least one token is pooled).
        start = min(len(prefix_ids), len(full_ids) - 1)
        sequences.append((list(full_ids), start))
    hidden = int(network.config.hidden_size)
    out = np.zeros((len(keep), len(items), hidden), dtype=np.float32)
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    for begin in range(0, len(sequences), batch_size):
        chunk = sequences[begin : begin + batch_size]
        length = max(len(ids) for ids, _ in chunk)
        input_ids = torch.full((len(chunk), length), pad, dtype=torch.long)
        attention = torch.zeros((len(chunk), length), dtype=torch.long)
        reply_mask = torch.zeros((len(chunk), length), dtype=torch.float32)
        for row, (ids, start) in enumerate(chunk):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention[row, : len(ids)] = 1
            reply_mask[row, start : len(ids)] = 1.0
        captured: dict[int, Any] = {}
        handles = [_capture(model, layer, captured, stop=layer == last) for layer in keep]
        try:
            with torch.no_grad():
                network(input_ids=input_ids, attention_mask=attention, logits_to_keep=1)
        except _EnoughLayers:
            pass
        finally:
            for handle in handles:
                handle.remove()
        weights = reply_mask[:, :, None]
        for slot, layer in enumerate(keep):
            states = captured[layer].float()
            pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
            out[slot, begin : begin + len(chunk)] = pooled.numpy()
        if progress is not None:
            progress(min(begin + batch_size, len(sequences)), len(sequences))
    return out
