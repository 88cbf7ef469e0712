"""The `generate` stage's work as a :class:`~cai2.scale.ShardWork`: one model replica per worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cai2.errors import ModelError
from cai2.models import ChatModel, GenerationParams, load_model
from cai2.scale._executor import Executor, ItemRunReport, RayExecutor, run_items
from cai2.store import JsonlWriter


@dataclass
class GenerateWork:
    """Answer a shard of prompts with the model ``spec`` names, loaded once per worker.

    Items are ``(id, kind, prompt)`` triples; each result is the `generate` stage's record.

    Args:
        spec: Model spec, e.g. ``hf:smollm2-135m`` or ``openai:URL1,URL2#model``.
        params: Sampling settings.
        system_prompt: System message placed before every prompt.
        options: Backend options passed to :func:`cai2.models.load_model`.
        batch_size: Prompts per model call within a shard.
    """

    spec: str
    params: GenerationParams
    system_prompt: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 16
    _model: ChatModel | None = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None  # a model is never shipped to a worker; each loads its own
        return state

    def setup(self) -> None:
        """Load the model (once per worker)."""
        if self._model is None:
            self._model = load_model(self.spec, **self.options)

    def __call__(self, shard: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
        """Generate one response per ``(id, kind, prompt)`` and build the stage's records."""
        self.setup()
        assert self._model is not None
        params_record = self.params.model_dump(mode="json")
        records: list[dict[str, Any]] = []
        for start in range(0, len(shard), self.batch_size):
            batch = shard[start : start + self.batch_size]
            conversations: list[Any] = []
            for _, _, prompt in batch:
                turns = [{"role": "system", "content": self.system_prompt}] * bool(
                    self.system_prompt
                )
                conversations.append([*turns, {"role": "user", "content": prompt}])
            began = time.perf_counter()
            generations = self._model.generate(conversations, self.params)
            seconds = (time.perf_counter() - began) / len(batch)
            if len(generations) != len(batch):
                raise ModelError(
                    f"model `{self.spec}` returned {len(generations)} responses for "
                    f"{len(batch)} prompts"
                )
            created_at = datetime.now(UTC).isoformat(timespec="seconds")
            for (item_id, kind, prompt), generation in zip(batch, generations, strict=True):
                records.append(
                    {
                        "id": item_id,
                        "kind": kind,
                        "prompt": prompt,
                        "system_prompt": self.system_prompt,
                        "response": generation.text,
                        "finish_reason": generation.finish_reason,
                        "prompt_tokens": generation.prompt_tokens,
                        "completion_tokens": generation.completion_tokens,
                        "model": self.spec,
                        "params": params_record,
                        "created_at": created_at,
                        "seconds": round(seconds, 4),
                    }
                )
        return records


def generate_on_ray(
    items: Sequence[Any],
    config: Any,
    spec: str,
    writer: JsonlWriter,
    *,
    progress: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> ItemRunReport:
    """The `generate` stage's loop on Ray: shards of ``config.batch_size`` prompts over actors.

    Args:
        items: The stage's :class:`~cai2.pipeline.PromptItem` list (finished ones are skipped).
        config: The stage's :class:`~cai2.pipeline.GenerateConfig`.
        spec: Model spec each actor loads.
        writer: The stage's ``responses.jsonl`` writer (with ``id_key="id"``).
        progress: Called as ``progress(done, total)`` after each shard is written.
        executor: Use this executor instead of a new :class:`RayExecutor` of ``config.workers``.
    """
    work = GenerateWork(
        spec=spec,
        params=config.params,
        system_prompt=config.system_prompt,
        batch_size=config.batch_size,
    )
    triples = [(item.id, item.kind, item.prompt) for item in items]
    own = executor is None
    runner = executor or RayExecutor(workers=config.workers)
    try:
        return run_items(
            runner,
            work,
            triples,
            writer,
            item_id=lambda triple: triple[0],
            shard_size=config.batch_size,
            progress=progress,
        )
    finally:
        if own:
            runner.close()
