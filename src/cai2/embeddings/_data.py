"""Labelled examples of principle compliance and violation, and their fixed split.

The built-in set (``cai2/data/embeddings/examples.jsonl``) is written by the project: for each of
eight principles of ``cai-2.0``, 30 prompts each (100 for ``honest.accuracy``, whose true and
false facts are the hardest to tell apart) answered once in a way that follows the principle
(``violates: false``) and once in a way that breaks it (``violates: true``).

Examples are split once into ``train`` (50%), ``val`` (20%) and ``test`` (30%) by a hash of the
normalised prompt, so both replies to a prompt always land on the same side and a prompt never
moves between splits when examples are added. ``train`` fits the directions, ``val`` chooses the
layer and fits the calibration, ``test`` is only ever used to measure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from cai2.errors import DataError
from cai2.models import Conversation, Message
from cai2.store._files import jsonl_objects, require_strings

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
SPLIT_FRACTIONS: dict[Split, float] = {"train": 0.5, "val": 0.2, "test": 0.3}
SPLIT_SALT = "embeddings"


@dataclass(frozen=True)
class PrincipleExample:
    """One reply labelled as following or violating one principle."""

    id: str
    principle: str
    prompt: str
    response: str
    violates: bool

    @property
    def conversation(self) -> Conversation:
        """The prompt as a one-turn conversation (the reply is judged after it)."""
        return [Message(role="user", content=self.prompt)]

    @property
    def split(self) -> Split:
        """The fixed split of this example (see the module docstring)."""
        return example_split(self.prompt)


def example_split(prompt: str, salt: str = SPLIT_SALT) -> Split:
    """``train``, ``val`` or ``test`` for a prompt, from a hash of its lower-cased words."""
    key = " ".join(re.findall(r"[a-z0-9]+", prompt.lower()))
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < SPLIT_FRACTIONS["train"]:
        return "train"
    if position < SPLIT_FRACTIONS["train"] + SPLIT_FRACTIONS["val"]:
        return "val"
    return "test"


def examples_file() -> Path:
    """The built-in labelled examples shipped with cai2."""
    return Path(str(resources.files("cai2") / "data" / "embeddings" / "examples.jsonl"))


def load_examples(
    path: str | Path | None = None, principles: Iterable[str] | None = None
) -> list[PrincipleExample]:
    """Labelled examples from a JSONL file (default: the built-in set).

    Each line needs ``id``, ``principle``, ``prompt``, ``response`` (strings) and ``violates``
    (a boolean).

    Args:
        path: A JSONL file; the built-in set when ``None``.
        principles: Keep only these principle ids (all when ``None``).

    Raises:
        DataError: naming file, line and key for a malformed line, a duplicate id, or a principle
            with no examples on one side.
    """
    file = Path(path) if path is not None else examples_file()
    if not file.is_file():
        raise DataError(f"{file}: labelled example file not found")
    wanted = set(principles) if principles is not None else None
    examples: list[PrincipleExample] = []
    seen: set[str] = set()
    for number, row in jsonl_objects(file.read_text(encoding="utf-8"), str(file)):
        require_strings(row, ("id", "principle", "prompt", "response"), f"{file}:{number}")
        if not isinstance(row.get("violates"), bool):
            raise DataError(f"{file}:{number} at `violates`: expected true or false")
        if row["id"] in seen:
            raise DataError(f"{file}:{number} at `id`: duplicate id `{row['id']}`")
        seen.add(row["id"])
        if wanted is not None and row["principle"] not in wanted:
            continue
        examples.append(
            PrincipleExample(
                id=row["id"],
                principle=row["principle"],
                prompt=row["prompt"].strip(),
                response=row["response"].strip(),
                violates=row["violates"],
            )
        )
    if wanted is not None:
        missing = sorted(wanted - {e.principle for e in examples})
        if missing:
            raise DataError(f"{file}: no examples for principle(s) {', '.join(missing)}")
    check_both_sides(examples, str(file))
    return examples


def check_both_sides(examples: Sequence[PrincipleExample], where: str) -> None:
    """Raise :class:`DataError` when a principle has no compliant or no violating example."""
    if not examples:
        raise DataError(f"{where}: no labelled examples")
    for principle in sorted({e.principle for e in examples}):
        sides = {e.violates for e in examples if e.principle == principle}
        if sides != {True, False}:
            side = "violating" if True not in sides else "compliant"
            raise DataError(
                f"{where}: principle `{principle}` has no {side} examples; a direction needs both"
            )


def split_examples(
    examples: Sequence[PrincipleExample],
) -> dict[Split, list[PrincipleExample]]:
    """The examples of each split, in their original order."""
    return {split: [e for e in examples if e.split == split] for split in SPLITS}


def split_counts(examples: Sequence[PrincipleExample]) -> dict[str, dict[str, dict[str, int]]]:
    """``{principle: {split: {"compliant": n, "violating": n}}}`` for reports."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for example in examples:
        per_split = counts.setdefault(example.principle, {s: {} for s in SPLITS})
        side = "violating" if example.violates else "compliant"
        bucket = per_split[example.split]
        bucket[side] = bucket.get(side, 0) + 1
    return counts
