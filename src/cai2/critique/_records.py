"""What the critique engine writes: one record per prompt with every step and its principle."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


def sft_examples(
    records: Iterable[CritiqueRecord], keep_unrevised_kinds: Sequence[str] = ("helpful",)
) -> list[dict[str, Any]]:
    """Prompt → final reply pairs for SFT, in TRL's conversational prompt–completion format.

    A record is used when a revision was accepted, or when its kind is in ``keep_unrevised_kinds``
    (helpful requests answered well from the start: mixed in, as in the original method, so the
    student does not learn to refuse everything). Harmful requests whose reply was never improved
    are left out: training on them would teach the harm.
    """
    examples = []
    for record in records:
        if record.revised or record.kind in keep_unrevised_kinds:
            examples.append(
                {
                    "id": record.id,
                    "prompt": [{"role": "user", "content": record.prompt}],
                    "completion": [{"role": "assistant", "content": record.final_response}],
                }
            )
    return examples
