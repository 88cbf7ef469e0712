"""What the critique engine writes: one record per prompt with every step and its principle."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import Field

from cai2.config import StrictModel
from cai2.errors import DataError


class CritiqueStep(StrictModel):
    """One round for one prompt: the principle applied, the critique, and what became of it."""

    round: int = Field(description="Round number, starting at 1.")
    principle_id: str = Field(description="The principle this round applied.")
    layer_id: str = Field(description="Layer of that principle.")
    depth: int = Field(description="Depth of the principle in the active constitution.")
    reply_before: str = Field(description="The reply the critique looked at.")
    critique: str = Field(description="What the critic wrote.")
    violation: bool = Field(description="Whether a violation was found (so a revision was asked).")
    violation_source: str = Field(
        description="Who decided about the violation: `critique`, a judge name, or `policy`."
    )
    p_violation: float | None = Field(description="The judge's P(violation) of the reply, if any.")
    revision_raw: str | None = Field(description="What the reviser wrote, before clean-up.")
    revision: str | None = Field(description="The cleaned revision; `None` when dropped.")
    drop_reason: str | None = Field(description="Why the revision was dropped by clean-up.")
    fixes: list[str] = Field(description="Clean-up repairs applied to the kept revision.")
    preference: float | None = Field(
        description="The judge's P(revision ≻ reply before); `None` without a judge."
    )
    addresses_request: bool | None = Field(
        description="Whether the revision still addresses the request; `None` if not checked."
    )
    accepted: bool = Field(description="Whether the revision replaced the reply.")
    reject_reason: str | None = Field(
        description="Why a clean revision was not accepted: `not_preferred` or `off_request`."
    )


class CritiqueRecord(StrictModel):
    """The full history of one prompt through the critique → revision loop, with provenance."""

    id: str = Field(description="Prompt id.")
    kind: str = Field(description="`helpful`, `harmful` or `other`.")
    prompt: str = Field(description="The user's request.")
    risk: str = Field(description="Assessed risk tier (`low` when not assessed).")
    domains: list[str] = Field(description="Assessed domains.")
    complexity: float = Field(description="Assessed complexity.")
    constitution: str = Field(description="`name@version` of the constitution resolved.")
    active_principles: list[str] = Field(description="Ids of the principles active for the prompt.")
    policy: str = Field(description="Policy name, e.g. `cai-2.0` or `cai-1.0`.")
    initial_response: str = Field(description="The student's first reply.")
    final_response: str = Field(description="The reply after the last accepted revision.")
    revised: bool = Field(description="Whether any revision was accepted.")
    stop_reason: str = Field(
        description="`max_rounds`, `unchanged` (a round changed nothing) or `no_principles`."
    )
    steps: list[CritiqueStep] = Field(description="Every round, in order.")
    model: str = Field(description="Spec of the student model that wrote the first reply.")
    critic: str = Field(description="Spec of the model that wrote critiques and revisions.")
    judge: str | None = Field(description="Name of the judge used, or `None`.")
    judge_note: str | None = Field(description="Why no judge was used, when one was asked for.")
    params: dict[str, Any] = Field(description="Generation settings of each call kind.")
    completion_tokens: int = Field(description="Tokens generated for this prompt, all calls.")
    created_at: str = Field(description="UTC ISO time the record was written.")


def records_to_dataset(records: Sequence[CritiqueRecord]) -> Any:
    """The records as a ``datasets.Dataset``: one row per prompt, ``steps`` a list of structs."""
    from datasets import Dataset

    if not records:
        raise DataError("no critique records to turn into a dataset")
    return Dataset.from_list([record.model_dump(mode="json") for record in records])


def safe_reply(statement: str, request: str) -> str:
    """A refusal grounded in a principle's own statement, worded for the request (deterministic).

    Used when the critique engine produced no acceptable revision of a harmful reply: it names
    the principle the reply broke and offers a safe direction instead, as the ``safer_alternative``
    principle asks. The wording varies with a hash of the request, so training rows differ.
    """
    openers = (
        "I can't help with that.",
        "I won't help with this request.",
        "Sorry, but I can't do that.",
    )
    offers = (
        "If you are trying to stay safe or understand the topic in general terms, I'm glad to "
        "help with that instead.",
        "I'm happy to help with a safer, related question.",
        "If there is a legitimate goal behind this, tell me about it and I'll help where I can.",
    )
    digest = int.from_bytes(hashlib.sha256(request.encode()).digest()[:4], "big")
    # quoted rather than spliced into a sentence: statements are imperatives ("Do not …"),
    # "should" sentences or conditionals, and no one clause template reads well for all of them
    rule = statement.strip().rstrip(".")
    return (
        f'{openers[digest % len(openers)]} One of the principles I follow is "{rule}", and '
        f"answering would go against it. {offers[(digest // 3) % len(offers)]}"
    )


FALLBACK_KINDS = ("harmful",)
"""Prompt kinds that get a principle-grounded refusal when no revision was accepted."""


def sft_examples(
    records: Iterable[CritiqueRecord],
    keep_unrevised_kinds: Sequence[str] = ("helpful",),
    fallback_statements: Mapping[str, str] | None = None,
    unrevised_repeats: int = 1,
) -> list[dict[str, Any]]:
    """Prompt → final reply pairs for SFT, in TRL's conversational prompt–completion format.

    A record is used when a revision was accepted, or when its kind is in ``keep_unrevised_kinds``
    (helpful requests answered well from the start: mixed in, as in the original method, so the
    student does not learn to refuse everything). Harmful requests whose reply was never improved
    are left out — training on them would teach the harm — unless ``fallback_statements`` (principle
    id → statement) is given: then such a request is trained on :func:`safe_reply` for the principle
    of its first round that found a violation (a record where no round found one stays out).
    Each row's ``source`` says which: ``revision``, ``original`` or ``principle``.

    ``unrevised_repeats`` > 1 puts each ``original`` row in that many times (consecutively; the
    trainer shuffles): a heavier helpfulness mix, for students that otherwise learn from many
    principle refusals to refuse benign requests too.
    """
    if unrevised_repeats < 1:
        raise ValueError(f"unrevised_repeats must be at least 1, got {unrevised_repeats}")
    examples = []
    for record in records:
        if record.revised:
            completion, source = record.final_response, "revision"
        elif record.kind in keep_unrevised_kinds:
            completion, source = record.final_response, "original"
        elif fallback_statements is not None and record.kind in FALLBACK_KINDS:
            broken = next((s.principle_id for s in record.steps if s.violation), None)
            if broken is None or broken not in fallback_statements:
                continue
            completion, source = safe_reply(fallback_statements[broken], record.prompt), "principle"
        else:
            continue
        row = {
            "id": record.id,
            "source": source,
            "prompt": [{"role": "user", "content": record.prompt}],
            "completion": [{"role": "assistant", "content": completion}],
        }
        examples.extend([row] * (unrevised_repeats if source == "original" else 1))
    return examples
