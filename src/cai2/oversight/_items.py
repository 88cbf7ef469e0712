"""Reading the replies to oversee from JSONL, and the default hierarchy."""

from __future__ import annotations

from pathlib import Path

from cai2.context._types import RiskTier
from cai2.errors import DataError
from cai2.judges._types import as_conversation
from cai2.oversight._config import LevelConfig, OversightConfig, SamplingPolicy
from cai2.oversight._hierarchy import OversightItem
from cai2.store._files import jsonl_objects

_KEYS = {"id", "prompt", "conversation", "response", "risk"}


def read_oversight_items(path: str | Path) -> list[OversightItem]:
    """Read one item per line: ``{"id", "prompt" | "conversation", "response", "risk"?}``.

    ``id`` defaults to the line number; ``risk`` is ``low``, ``medium`` (default), ``high`` or
    ``critical``.

    Raises:
        DataError: naming the file, line and key of the first bad record.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataError(f"{source}: file not found") from exc
    items: list[OversightItem] = []
    seen: dict[str, int] = {}
    for number, record in jsonl_objects(text, str(source)):
        where = f"{source}:{number}"
        unknown = sorted(set(record) - _KEYS)
        if unknown:
            raise DataError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
        if ("prompt" in record) == ("conversation" in record):
            raise DataError(f"{where}: give exactly one of `prompt` or `conversation`")
        response = record.get("response")
        if not isinstance(response, str):
            raise DataError(f"{where} at `response`: must be a string")
        if "conversation" in record and not isinstance(record["conversation"], list):
            raise DataError(
                f"{where} at `conversation`: must be a list of {{role, content}} messages"
            )
        item_id = str(record.get("id", number))
        if item_id in seen:
            raise DataError(f"{where} at `id`: `{item_id}` already used on line {seen[item_id]}")
        seen[item_id] = number
        try:
            raw = record["prompt"] if "prompt" in record else record["conversation"]
            conversation = as_conversation(raw)
            risk = RiskTier(record.get("risk", "medium"))
        except ValueError as exc:
            raise DataError(
                f"{where} at `risk`: {exc}; use one of {[t.value for t in RiskTier]}"
            ) from exc
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from exc
        items.append(OversightItem(item_id, conversation, response, risk))
    if not items:
        raise DataError(f"{source}: no items; write one JSON object per line")
    return items


def default_oversight_config() -> OversightConfig:
    """Refusal detector → MiniLM embedding head → people.

    The thresholds are fixed by reasoning, not fitted: the cheap detector decides everything; the
    head reviews what the detector is unsure about (its fixed evidence levels 0.4–0.6 mean "a
    refusal phrase deep in a long reply"), disagreements and a risk-weighted 10% random share;
    people see the head's uncertain verdicts (0.3–0.7) and a risk-weighted 2% random share.
    """
    return OversightConfig(
        levels=[
            LevelConfig(name="triage", judge="refusal", escalation_band=(0.3, 0.7)),
            LevelConfig(
                name="review",
                judge="embedding-head",
                sampling=SamplingPolicy(uncertainty_band=(0.3, 0.7), random_share=0.1),
                escalation_band=(0.3, 0.7),
            ),
        ]
    )
