"""Policies: which principle a critique round applies, and how strict the loop is.

The same engine runs both the CAI 2.0 method and the CAI 1.0 baseline; only the policy differs, so
comparisons between them are fair.

- ``layered`` (CAI 2.0): the constitution is resolved per prompt from its assessed context, and
  round ``k`` applies a principle of depth ``k`` (base layers first, then risk and domain layers,
  then sub-principles), the most important one first (layer priority, then severity). A round is
  skipped when no violation is found, and the loop stops when a round changes nothing.
- ``random`` (CAI 1.0, Bai et al. 2022, arXiv:2212.08073 §3): the static ``cai-1.0`` constitution,
  one principle drawn uniformly at random for each step, a fixed number of rounds, every revision
  kept.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from cai2.config import StrictModel
from cai2.constitution import ActiveConstitution, ActivePrinciple
from cai2.errors import ConfigError

Selection = Literal["layered", "random"]


class CritiquePolicy(StrictModel):
    """How the critique → revision loop picks principles and decides what to keep."""

    name: str = Field(description="Label recorded with every result, e.g. `cai-2.0`.")
    constitution: str = Field(
        description="Built-in constitution name (`cai-2.0`, `cai-1.0`, …) or a YAML path."
    )
    selection: Selection = Field(
        description=(
            "`layered`: round k applies the most important principle of depth k of the "
            "constitution "
            "resolved for the prompt's context; `random`: one principle drawn at random per round."
        )
    )
    rounds: int = Field(ge=1, le=16, description="Most critique → revision rounds per prompt.")
    assess_context: bool = Field(
        description="Assess each prompt's risk, domains and complexity to resolve the constitution."
    )
    skip_when_no_violation: bool = Field(
        description="Skip the revision when the critique or the judge finds no violation."
    )
    stop_when_unchanged: bool = Field(
        description="Stop a prompt's loop after the first round that changes nothing."
    )
    require_preference: bool = Field(
        description=(
            "Keep a revision only if the judge prefers it to the current reply and it still "
            "addresses the request."
        )
    )


def cai2_policy(rounds: int = 3, constitution: str = "cai-2.0") -> CritiquePolicy:
    """The CAI 2.0 policy: layered principles by context, skip, early stop, judged revisions."""
    return CritiquePolicy(
        name="cai-2.0",
        constitution=constitution,
        selection="layered",
        rounds=rounds,
        assess_context=True,
        skip_when_no_violation=True,
        stop_when_unchanged=True,
        require_preference=True,
    )


def cai1_policy(rounds: int = 4, constitution: str = "cai-1.0") -> CritiquePolicy:
    """The CAI 1.0 baseline: static constitution, a random principle per step, fixed rounds.

    Four rounds follows the largest number of revisions studied in the 2022 paper.
    """
    return CritiquePolicy(
        name="cai-1.0",
        constitution=constitution,
        selection="random",
        rounds=rounds,
        assess_context=False,
        skip_when_no_violation=False,
        stop_when_unchanged=False,
        require_preference=False,
    )


POLICIES = {"cai-2.0": cai2_policy, "cai-1.0": cai1_policy}
"""Policy presets by name; each factory takes ``rounds`` and ``constitution``."""


def policy_by_name(
    name: str, rounds: int | None = None, constitution: str | None = None
) -> CritiquePolicy:
    """The preset ``name`` with optional ``rounds`` / ``constitution`` replaced.

    Raises:
        ConfigError: for an unknown preset name.
    """
    if name not in POLICIES:
        raise ConfigError(
            f"unknown critique policy `{name}`; use one of {', '.join(POLICIES)}", key="policy"
        )
    policy = POLICIES[name]()
    update: dict[str, object] = {}
    if rounds is not None:
        update["rounds"] = rounds
    if constitution is not None:
        update["constitution"] = constitution
    return policy.model_validate({**policy.model_dump(), **update}) if update else policy


def step_rng(seed: int, prompt_id: str, round_index: int) -> random.Random:
    """A random generator fixed by seed, prompt and round, so reruns and resumes draw the same."""
    digest = hashlib.sha256(f"{seed}:{prompt_id}:{round_index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def select_principle(
    policy: CritiquePolicy,
    active: ActiveConstitution,
    round_index: int,
    used: Sequence[str],
    rng: random.Random,
) -> ActivePrinciple | None:
    """The principle round ``round_index`` (0-based) applies, or ``None`` when none is left.

    ``layered``: the highest-precedence unused principle of depth ``round_index``; when that depth
    has none left (the context switched no deeper layer on), the highest-precedence unused principle
    of any shallower depth. ``random``: uniform over every active principle (repeats allowed, as in
    the 2022 method).
    """
    if not active.principles:
        return None
    if policy.selection == "random":
        return rng.choice(active.principles)
    precedence = active.by_precedence()
    unused = [p for p in precedence if p.id not in used]
    for candidates in (
        [p for p in unused if p.depth == round_index],
        [p for p in unused if p.depth < round_index],
    ):
        if candidates:
            return candidates[0]
    return None
