"""Chat conversations for the critic and the reviser, with few-shot demonstrations.

Each demonstration is a worked example from the constitution (a violating reply with its critique
and revision), written as earlier turns of the same chat, so a small model sees the exact format it
has to continue.
"""

from __future__ import annotations

from dataclasses import dataclass

from cai2.constitution import ActivePrinciple, Constitution, Example, load_constitution
from cai2.models import Conversation


@dataclass(frozen=True)
class Demonstration:
    """One worked example and the requests of the principle it illustrates."""

    example: Example
    critique_request: str
    revision_request: str


def demonstration_pool(constitution: Constitution) -> dict[str, list[Demonstration]]:
    """Complete demonstrations (critique and revision written) by principle id.

    A constitution without any (``cai-1.0`` ships none) borrows those of ``cai-2.0``, so both
    policies see the same kind of demonstrations.
    """
    pool = _collect(constitution)
    if not pool and constitution.name != "cai-2.0":
        pool = _collect(load_constitution("cai-2.0"))
    return pool


def _collect(constitution: Constitution) -> dict[str, list[Demonstration]]:
    pool: dict[str, list[Demonstration]] = {}
    flat = constitution.flatten()
    for merged in flat.layers:
        stack = list(merged.layer.principles)
        while stack:
            principle = stack.pop(0)
            stack.extend(principle.children)
            for example in principle.examples.violating:
                if example.critique and example.revision:
                    pool.setdefault(principle.id, []).append(
                        Demonstration(
                            example, principle.critique_request, principle.revision_request
                        )
                    )
    return pool


def pick_demonstrations(
    pool: dict[str, list[Demonstration]], principle: ActivePrinciple, count: int
) -> list[Demonstration]:
    """Up to ``count`` demonstrations: the principle's own first, then others in a fixed order."""
    if count <= 0:
        return []
    chosen = list(pool.get(principle.id, []))
    for principle_id in sorted(pool):
        if len(chosen) >= count:
            break
        if principle_id != principle.id:
            chosen.extend(pool[principle_id])
    return chosen[:count]


def critique_conversation(
    prompt: str, reply: str, principle: ActivePrinciple, demonstrations: list[Demonstration]
) -> Conversation:
    """The chat the critic continues: demonstrations, then the reply and the critique request."""
    conversation: Conversation = []
    for demo in demonstrations:
        conversation += [
            {"role": "user", "content": demo.example.prompt},
            {"role": "assistant", "content": demo.example.response},
            {"role": "user", "content": demo.critique_request},
            {"role": "assistant", "content": demo.example.critique or ""},
        ]
    conversation += [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": principle.critique_request},
    ]
    return conversation


def revision_conversation(
    prompt: str,
    reply: str,
    critique: str,
    principle: ActivePrinciple,
    demonstrations: list[Demonstration],
) -> Conversation:
    """The chat the reviser continues: demonstrations, the critique, then the revision request."""
    conversation: Conversation = []
    for demo in demonstrations:
        conversation += [
            {"role": "user", "content": demo.example.prompt},
            {"role": "assistant", "content": demo.example.response},
            {"role": "user", "content": demo.critique_request},
            {"role": "assistant", "content": demo.example.critique or ""},
            {"role": "user", "content": demo.revision_request},
            {"role": "assistant", "content": demo.example.revision or ""},
        ]
    conversation += [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": principle.critique_request},
        {"role": "assistant", "content": critique},
        {"role": "user", "content": principle.revision_request},
    ]
    return conversation
