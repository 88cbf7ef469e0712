"""The project's own labelled prompt set for context assessment, and conversions of raw input.

The set lives in ``cai2/data/context/prompts.jsonl``: one JSON object per line with an ``id``,
either a ``prompt`` (one user turn) or ``messages`` (a multi-turn conversation), the risk tier, the
domains, a rough complexity label in [0, 1], and a fixed ``split`` (``train`` or ``test``).
Near-duplicate siblings share a ``group`` and always sit in the same split, so the held-out test
split stays honest.

The first round's split was drawn at random, stratified by tier. The second round's prompts got
``group = "g" + sha256(prompt.lower())[:8]`` and went to ``test`` when ``int(group[1:], 16) % 100 <
27``, else to ``train``. The third round (2026-11-29) was then the whole test split, and the
earlier test prompts moved to ``train``; the fourth, fifth and sixth rounds (also 2026-11-29)
replaced it the same way, and the fifth and sixth also added a batch of training prompts each by
four other writers. A
former test prompt's ``notes`` say so (see :data:`FORMER_TEST_NOTE`). In every round, a
near-duplicate of an existing prompt joins that prompt's group and split.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from cai2.config import StrictModel
from cai2.constitution._domains import KNOWN_DOMAINS
from cai2.context._types import RiskTier
from cai2.errors import DataError
from cai2.models._types import Conversation, Message

PromptOrConversation = str | Sequence[Mapping[str, str]]
"""What the assessment accepts: a single user prompt, or a list of ``{"role", "content"}`` turns."""

_ROLES = ("system", "user", "assistant")

SECOND_ROUND_NOTE = "second round"
"""In ``notes``: written in the second round (2026-11-28), after the rules in ``_rules.py``."""

FORMER_TEST_NOTE = "held out as the test split until"
"""In ``notes``: a former test prompt, now trained on: those of the first two rounds since the
third round, those of the third round since the fourth."""

THIRD_ROUND_NOTE = "third round"
"""In ``notes``: written in the third round (2026-11-29); the test split until the fourth round (and
4 near-duplicates of earlier prompts, which joined their groups in ``train``)."""

FOURTH_ROUND_NOTE = "fourth round"
"""In ``notes``: written in the fourth round (2026-11-29); the test split until the fifth round (and
3 near-duplicates of earlier prompts, which joined their groups in ``train``)."""

FIFTH_ROUND_NOTE = "fifth round"
"""In ``notes``: written in the fifth round (2026-11-29): the test split until the sixth round, a
batch of 750 training prompts by four other writers, and 24 test candidates that reworded an
earlier or a new training prompt, which joined its group in ``train``."""

SIXTH_ROUND_NOTE = "sixth round"
"""In ``notes``: written in the sixth round (2026-11-29, session 15): the test split since then, a
batch of 500 training prompts aimed at the tier boundaries by four other writers, and 13 test
candidates that reworded an earlier or a new training prompt, which joined its group in
``train`` (a 14th, the same text as a new training prompt, was dropped)."""


class ChatTurn(StrictModel):
    """One turn of a labelled multi-turn case."""

    role: Literal["system", "user", "assistant"] = Field(description="Who spoke.")
    content: str = Field(min_length=1, description="What was said.")


class LabelledPrompt(StrictModel):
    """One labelled example of the context-assessment set."""

    id: str = Field(min_length=1, description="Unique id, e.g. `hig-0042`.")
    prompt: str | None = Field(None, min_length=1, description="A single user prompt.")
    messages: list[ChatTurn] | None = Field(
        None, description="A multi-turn conversation ending with a user turn (instead of `prompt`)."
    )
    risk: RiskTier = Field(description="Labelled risk tier.")
    domains: list[str] = Field(min_length=1, description="Labelled domains (see KNOWN_DOMAINS).")
    complexity: float = Field(ge=0.0, le=1.0, description="Rough complexity label in [0, 1].")
    split: Literal["train", "test"] = Field(description="Fixed split; `test` is never trained on.")
    group: str | None = Field(
        None, description="Near-duplicate siblings share a group and therefore a split."
    )
    notes: str | None = Field(None, description="Free-text remarks about the label.")

    @model_validator(mode="after")
    def _check(self) -> LabelledPrompt:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of `prompt` or `messages`")
        if self.messages is not None and (not self.messages or self.messages[-1].role != "user"):
            raise ValueError("`messages` must be non-empty and end with a user turn")
        unknown = [d for d in self.domains if d not in KNOWN_DOMAINS]
        if unknown:
            raise ValueError(
                f"unknown domain(s) {unknown}; use names from KNOWN_DOMAINS: {list(KNOWN_DOMAINS)}"
            )
        return self

    @property
    def conversation(self) -> Conversation:
        """The example as a conversation."""
        if self.messages is not None:
            return [Message(role=turn.role, content=turn.content) for turn in self.messages]
        return [Message(role="user", content=self.prompt or "")]


def default_dataset_path() -> Path:
    """Path of the built-in labelled prompt set."""
    return Path(str(resources.files("cai2") / "data" / "context" / "prompts.jsonl"))


def load_context_dataset(path: str | Path | None = None) -> list[LabelledPrompt]:
    """Read a labelled prompt set (the built-in one by default).

    Raises:
        DataError: for a missing file, malformed JSON, an invalid record or a duplicate id, naming
            the file and line.
    """
    file = Path(path) if path is not None else default_dataset_path()
    if not file.exists():
        raise DataError(f"{file}: labelled prompt set not found; pass the path of a JSONL file")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    records: list[LabelledPrompt] = []
    seen: dict[str, int] = {}
    # Split on "\n" only: str.splitlines() would also split on U+2028 and friends inside strings.
    for line_number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{file}:{line_number}: malformed JSON ({exc.msg} at column {exc.colno}); "
                "each line must be one JSON object"
            ) from exc
        record = _validate_record(raw, file, line_number)
        if record.id in seen:
            raise DataError(
                f"{file}:{line_number}: duplicate id `{record.id}` (first on line "
                f"{seen[record.id]}); ids must be unique"
            )
        seen[record.id] = line_number
        records.append(record)
    if not records:
        raise DataError(f"{file}: the labelled prompt set is empty")
    return records


def _validate_record(raw: Any, file: Path, line_number: int) -> LabelledPrompt:
    if not isinstance(raw, dict):
        raise DataError(f"{file}:{line_number}: expected a JSON object, got {type(raw).__name__}")
    try:
        return LabelledPrompt.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(record)"
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "missing required key"
        raise DataError(f"{file}:{line_number} at `{key}`: {message}") from exc


def dataset_fingerprint(path: str | Path | None = None) -> str:
    """sha256 of the dataset file's bytes, used to key cached classifiers."""
    file = Path(path) if path is not None else default_dataset_path()
    return hashlib.sha256(file.read_bytes()).hexdigest()


def as_conversation(prompt_or_conversation: PromptOrConversation) -> Conversation:
    """Turn a prompt string or a list of ``{"role", "content"}`` mappings into a conversation.

    Raises:
        DataError: if the input is empty, a turn lacks ``role``/``content``, or a role is unknown.
    """
    if isinstance(prompt_or_conversation, str):
        if not prompt_or_conversation.strip():
            raise DataError("nothing to assess: the prompt is empty")
        return [Message(role="user", content=prompt_or_conversation)]
    turns: Conversation = []
    for index, turn in enumerate(prompt_or_conversation):
        if not isinstance(turn, Mapping) or "role" not in turn or "content" not in turn:
            raise DataError(
                f"conversation turn {index}: expected a mapping with `role` and `content`"
            )
        role, content = turn["role"], turn["content"]
        if role not in _ROLES:
            raise DataError(
                f"conversation turn {index} at `role`: unknown role `{role}`; "
                f"use one of {list(_ROLES)}"
            )
        if not isinstance(content, str):
            raise DataError(f"conversation turn {index} at `content`: expected a string")
        turns.append(Message(role=role, content=content))  # type: ignore[typeddict-item]
    if not any(turn["role"] == "user" and turn["content"].strip() for turn in turns):
        raise DataError("nothing to assess: the conversation has no non-empty user turn")
    return turns


def user_text(conversation: Conversation, max_chars: int = 2000) -> str:
    """The user turns joined oldest to newest, keeping the newest ``max_chars`` characters.

    The classifier reads only what the user asked: assistant turns carry no intent, and keeping the
    tail means the latest (usually decisive) turn survives truncation.
    """
    text = "\n".join(turn["content"].strip() for turn in conversation if turn["role"] == "user")
    return text[-max_chars:]
