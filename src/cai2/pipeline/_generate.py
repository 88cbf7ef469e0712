"""The `generate` stage: one model response per prompt, written as JSONL with provenance.

Responses are appended (and fsynced) one by one, batch by batch, to
``artifacts/<stage>/responses.jsonl``; a re-run reads the ids already there and generates only the
rest, so an interrupted stage loses at most the batch in flight.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field

from cai2.config import StrictModel
from cai2.errors import DataError, ModelError
from cai2.models import DEFAULT_GENERATION_BATCH_SIZE, Conversation, GenerationParams
from cai2.pipeline._context import StageContext, StageMetrics
from cai2.store._files import jsonl_objects

RESPONSES_FILE = "responses.jsonl"
INPUTS_FILE = "inputs.json"
PromptKind = Literal["helpful", "harmful", "other"]


@dataclass(frozen=True)
class PromptItem:
    """One prompt to answer."""

    id: str
    prompt: str
    kind: PromptKind = "other"


class GenerateConfig(StrictModel):
    """Settings of the `generate` stage."""

    prompts: str = Field(
        "default",
        description=(
            "A built-in prompt set (`default`: 20 helpful and 20 harmful-sounding requests) or the "
            "path of a `.jsonl` file with fields `id`, `prompt` and optional `kind` "
            "(`helpful`/`harmful`/`other`); relative paths start at the recipe's folder."
        ),
    )
    limit: int | None = Field(None, ge=1, description="Answer only the first `limit` prompts.")
    system_prompt: str | None = Field(
        None, description="System message placed before every prompt; none by default."
    )
    batch_size: int = Field(
        DEFAULT_GENERATION_BATCH_SIZE,
        ge=1,
        le=4096,
        description="Prompts per model call; results are saved after every batch.",
    )
    params: GenerationParams = Field(
        default_factory=GenerationParams,
        description="Sampling settings: `max_tokens`, `temperature`, `top_p`, `stop`, `seed`.",
    )
    model: str | None = Field(
        None, description="Model spec for this stage only; default: the recipe's `model`."
    )
    # Where the work runs is not part of the stage hash: a run started locally resumes on Ray.
    executor: Literal["local", "ray"] = Field(
        "local",
        exclude=True,
        description=(
            "`local` generates in this process; `ray` shards batches over `workers` Ray actors, "
            "each loading the model once (joins $RAY_ADDRESS if set, else starts Ray locally)."
        ),
    )
    workers: int = Field(
        2, ge=1, le=1024, exclude=True, description="Ray actors (model replicas) for `ray`."
    )


def builtin_prompt_sets() -> list[str]:
    """Names of the prompt sets shipped with cai2."""
    folder = resources.files("cai2").joinpath("data/prompts")
    return sorted(
        item.name.removesuffix(".jsonl")
        for item in folder.iterdir()
        if item.name.endswith(".jsonl")
    )


def load_prompts(source: str, base_dir: Path | None = None) -> list[PromptItem]:
    """Prompts from a built-in set name or a JSONL file path (see :class:`GenerateConfig`).

    Raises:
        DataError: if the set or file does not exist or a line is malformed (with file and line).
    """
    if source.endswith(".jsonl"):
        path = Path(source).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise DataError(
                f"prompt file {path} not found (relative paths start at the recipe's folder)"
            )
        return _parse_prompts(path.read_text(encoding="utf-8"), str(path))
    known = builtin_prompt_sets()
    if source not in known:
        raise DataError(
            f"unknown built-in prompt set `{source}`; known: {', '.join(known)} "
            "(a prompt file path must end in `.jsonl`)"
        )
    resource = resources.files("cai2").joinpath(f"data/prompts/{source}.jsonl")
    return _parse_prompts(resource.read_text(encoding="utf-8"), f"built-in prompt set `{source}`")


def _parse_prompts(text: str, where: str) -> list[PromptItem]:
    items: list[PromptItem] = []
    seen: set[str] = set()
    for line_number, record in jsonl_objects(text, where):
        item_id, prompt, kind = record.get("id"), record.get("prompt"), record.get("kind", "other")
        if not isinstance(item_id, str | int) or isinstance(item_id, bool) or str(item_id) == "":
            raise DataError(f"{where}:{line_number}: `id` must be a non-empty string or integer")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"{where}:{line_number}: `prompt` must be a non-empty string")
        if kind not in ("helpful", "harmful", "other"):
            raise DataError(
                f"{where}:{line_number}: `kind` must be `helpful`, `harmful` or `other`, "
                f"not {kind!r}"
            )
        if str(item_id) in seen:
            raise DataError(f"{where}:{line_number}: duplicate id `{item_id}`; ids must be unique")
        seen.add(str(item_id))
        items.append(PromptItem(id=str(item_id), prompt=prompt, kind=kind))
    if not items:
        raise DataError(f"{where}: no prompts found")
    return items


def _conversation(item: PromptItem, system_prompt: str | None) -> Conversation:
    conversation: Conversation = []
    if system_prompt:
        conversation.append({"role": "system", "content": system_prompt})
    conversation.append({"role": "user", "content": item.prompt})
    return conversation


def _inputs_fingerprint(items: list[PromptItem], config: GenerateConfig) -> str:
    payload = json.dumps(
        [[item.id, item.prompt, item.kind] for item in items] + [config.system_prompt],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def run_generate(context: StageContext, config: GenerateConfig) -> StageMetrics:
    """Answer every prompt not yet in ``responses.jsonl`` and append the answers.

    Each record holds ``id``, ``kind``, ``prompt``, ``system_prompt``, ``response``,
    ``finish_reason``, token counts, ``model`` (spec), ``params``, ``created_at`` (UTC ISO time) and
    ``seconds`` (wall time of the batch divided by its size).

    Raises:
        DataError: if the prompts changed since the stage first ran (resuming would mix two inputs).
    """
    items = load_prompts(config.prompts, context.base_dir)
    if config.limit is not None:
        items = items[: config.limit]
    spec = context.model_for(config.model)
    stage = context.stage
    fingerprint = _inputs_fingerprint(items, config)
    inputs_path = stage.path(INPUTS_FILE)
    if inputs_path.exists():
        previous = stage.read_json(INPUTS_FILE).get("sha256")
        if previous != fingerprint:
            raise DataError(
                f"the prompts of stage `{stage.name}` changed since it started ({config.prompts}); "
                "rerun with --restart to start over, or use a new run id"
            )
    else:
        stage.write_json(
            INPUTS_FILE, {"prompts": config.prompts, "count": len(items), "sha256": fingerprint}
        )

    params = config.params
    params_record = params.model_dump(mode="json")
    with stage.open_jsonl(RESPONSES_FILE, id_key="id") as out:
        todo = [item for item in items if item.id not in out.done_ids]
        completed = len(items) - len(todo)
        context.progress(completed, len(items))
        if todo and config.executor == "ray":
            from cai2.scale import generate_on_ray

            generate_on_ray(items, config, spec, out, progress=context.progress)
        elif todo:
            model = context.load_model(spec)
            for start in range(0, len(todo), config.batch_size):
                batch = todo[start : start + config.batch_size]
                began = time.perf_counter()
                generations = model.generate(
                    [_conversation(item, config.system_prompt) for item in batch], params
                )
                seconds = (time.perf_counter() - began) / len(batch)
                if len(generations) != len(batch):
                    raise ModelError(
                        f"model `{spec}` returned {len(generations)} responses "
                        f"for {len(batch)} prompts"
                    )
                created_at = datetime.now(UTC).isoformat(timespec="seconds")
                for item, generation in zip(batch, generations, strict=True):
                    out.append(
                        {
                            "id": item.id,
                            "kind": item.kind,
                            "prompt": item.prompt,
                            "system_prompt": config.system_prompt,
                            "response": generation.text,
                            "finish_reason": generation.finish_reason,
                            "prompt_tokens": generation.prompt_tokens,
                            "completion_tokens": generation.completion_tokens,
                            "model": spec,
                            "params": params_record,
                            "created_at": created_at,
                            "seconds": round(seconds, 4),
                        }
                    )
                    completed += 1
                    context.progress(completed, len(items))

    records = stage.read_jsonl(RESPONSES_FILE)
    wanted = {item.id for item in items}
    kept = [record for record in records if record.get("id") in wanted]
    completion_tokens = sum(int(record.get("completion_tokens", 0)) for record in kept)
    return {
        "prompts": len(items),
        "responses": len(kept),
        "completion_tokens": completion_tokens,
        "truncated": sum(record.get("finish_reason") == "length" for record in kept),
        "errors": sum(record.get("finish_reason") == "error" for record in kept),
    }
