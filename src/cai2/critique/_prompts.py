"""The project's training prompt sets, and the guard that keeps evaluation prompts out of them.

``redteam`` (harmful requests) and ``helpful`` (ordinary requests) were written for cai2. Helpful
requests are mixed into training, as in the original method, so the student does not learn to refuse
everything. AdvBench (read from the installed ``pyrit`` package) is for evaluation only:
:func:`training_items` refuses any training prompt that also appears there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cai2.critique._engine import CritiqueItem
from cai2.errors import DataError

PROMPT_SETS = ("redteam", "helpful")
"""The built-in training sets (files in ``cai2/data/prompts``)."""


def load_prompt_set(name: str) -> list[CritiqueItem]:
    """A built-in set or ``.jsonl`` file as critique items (see ``cai2.pipeline.load_prompts``)."""
    from cai2.pipeline._generate import load_prompts

    return [CritiqueItem(p.id, p.prompt, p.kind) for p in load_prompts(name)]


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def training_items(
    sets: Sequence[str] = PROMPT_SETS,
    limit_per_set: int | None = None,
    eval_prompts: Sequence[str] | None = None,
) -> list[CritiqueItem]:
    """Prompts for SL training, interleaved across sets, checked against evaluation prompts.

    Args:
        sets: Built-in set names or JSONL paths.
        limit_per_set: Take only the first this-many prompts of each set.
        eval_prompts: Prompts that must not be trained on; when ``None``, AdvBench (if ``pyrit`` is
            installed), the built-in ``default`` set that the baseline recipe evaluates and the
            held-out benign set of :mod:`cai2.evals` (over-refusal and helpfulness).

    Raises:
        DataError: if a training prompt is also an evaluation prompt, naming both.
    """
    per_set = [load_prompt_set(name)[:limit_per_set] for name in sets]
    items: list[CritiqueItem] = []
    for index in range(max((len(s) for s in per_set), default=0)):
        items += [s[index] for s in per_set if index < len(s)]
    if eval_prompts is None:
        try:
            from cai2.benchmarks import load_advbench

            eval_prompts = load_advbench()
        except DataError:
            eval_prompts = []
        from cai2.evals import load_benign_items

        eval_prompts = [
            *eval_prompts,
            *(item.prompt for item in load_prompt_set("default")),
            *(item.prompt for item in load_benign_items()),
        ]
    held_out = {_normalise(p) for p in eval_prompts}
    for item in items:
        if _normalise(item.prompt) in held_out:
            raise DataError(
                f"training prompt `{item.id}` ({item.prompt[:60]!r}) is also an evaluation prompt; "
                "remove it from the training set so evaluation stays held out"
            )
    return items
