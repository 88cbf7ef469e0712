"""The critique → revision engine: batched across prompts, any backend, any policy.

Round by round, every prompt still in the loop gets a critique of its current reply against the
principle the policy picks for it; the prompts with a violation get a revision; revisions are
cleaned, judged and accepted or not. All prompts of a chunk go to the model in one call per step, so
the backend batches them as it would raw generation.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field

from cai2.config import StrictModel
from cai2.constitution import ActiveConstitution, ActivePrinciple, load_constitution, resolve
from cai2.context import Context, RiskTier
from cai2.critique._cleanup import clean_revision, critique_finds_violation
from cai2.critique._fewshot import (
    critique_conversation,
    demonstration_pool,
    pick_demonstrations,
    revision_conversation,
)
from cai2.critique._policy import CritiquePolicy, cai2_policy, select_principle, step_rng
from cai2.critique._records import CritiqueRecord, CritiqueStep
from cai2.errors import ModelError
from cai2.models import ChatModel, Conversation, GenerationParams
from cai2.store import JsonlWriter

ProgressCallback = Callable[[int, int], None]


class ContextAssessorLike(Protocol):
    """Anything that assesses many prompts at once (``cai2.context.ContextAssessor``)."""

    def assess_batch(self, prompts: Sequence[Any]) -> list[Context]:
        """One context per prompt."""
        ...


class CritiqueSettings(StrictModel):
    """Settings of the engine besides the policy: sampling, few-shot, judging, chunking."""

    response: GenerationParams = Field(
        default_factory=lambda: GenerationParams(max_tokens=96),
        description="Sampling of the student's first reply.",
    )
    critique: GenerationParams = Field(
        default_factory=lambda: GenerationParams(max_tokens=64),
        description="Sampling of critiques.",
    )
    revision: GenerationParams = Field(
        default_factory=lambda: GenerationParams(max_tokens=96),
        description="Sampling of revisions.",
    )
    few_shot: int = Field(1, ge=0, le=8, description="Worked examples shown before each request.")
    judge: str | None = Field(
        "embedding-head",
        description=(
            "Registered judge (`cai2.judges.JUDGES`) that decides violations and prefers "
            "revisions; "
            "`null` to rely on the critique text and keep every clean revision."
        ),
    )
    violation_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="A judge P(violation) at or above this is a violation."
    )
    chunk_size: int = Field(
        64, ge=1, le=4096, description="Prompts taken through all rounds together, then saved."
    )
    seed: int = Field(0, description="Seed of the random principle draws (CAI 1.0 policy).")


@dataclass(frozen=True)
class CritiqueItem:
    """One prompt to take through the loop; ``response`` skips generating the first reply."""

    id: str
    prompt: str
    kind: str = "other"
    response: str | None = None


@dataclass
class CritiqueStats:
    """Counts over a run: rounds, skips, what clean-up dropped and repaired, judge decisions."""

    prompts: int = 0
    revised: int = 0
    rounds: int = 0
    skipped_no_violation: int = 0
    revisions_asked: int = 0
    accepted: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    fixes: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    stop_reasons: Counter[str] = field(default_factory=Counter)
    completion_tokens: int = 0
    generate_seconds: float = 0.0

    def add(self, record: CritiqueRecord) -> None:
        """Count one finished record."""
        self.prompts += 1
        self.revised += record.revised
        self.rounds += len(record.steps)
        self.stop_reasons[record.stop_reason] += 1
        self.completion_tokens += record.completion_tokens
        for step in record.steps:
            if not step.violation:
                self.skipped_no_violation += 1
                continue
            self.revisions_asked += 1
            self.accepted += step.accepted
            if step.drop_reason:
                self.dropped[step.drop_reason] += 1
            if step.reject_reason:
                self.rejected[step.reject_reason] += 1
            self.fixes.update(step.fixes)

    def as_metrics(self) -> dict[str, int | float]:
        """Flat metrics for the run store."""
        metrics: dict[str, int | float] = {
            "prompts": self.prompts,
            "revised": self.revised,
            "rounds": self.rounds,
            "skipped_no_violation": self.skipped_no_violation,
            "revisions_asked": self.revisions_asked,
            "accepted": self.accepted,
            "completion_tokens": self.completion_tokens,
        }
        for prefix, counter in (
            ("dropped", self.dropped),
            ("fixed", self.fixes),
            ("rejected", self.rejected),
            ("stop", self.stop_reasons),
        ):
            metrics.update({f"{prefix}_{key}": value for key, value in sorted(counter.items())})
        return metrics


@dataclass
class _State:
    item: CritiqueItem
    context: Context
    active: ActiveConstitution
    current: str = ""
    initial: str = ""
    steps: list[CritiqueStep] = field(default_factory=list)
    tokens: int = 0
    stop_reason: str | None = None
    principle: ActivePrinciple | None = None
    critique: str = ""


def addresses_request(prompt: str, reply: str, risky: bool) -> bool:
    """Whether ``reply`` still answers ``prompt``: a refusal only counts for a risky request.

    A non-refusal must share at least one content word with the request (when the request has any);
    this catches revisions that drift into talking about the critique itself.
    """
    from cai2.judges import refusal_probability, shares_content

    if refusal_probability(reply)[0] >= 0.5:
        return risky
    return shares_content(prompt, reply)


class CritiqueEngine:
    """Runs the critique → revision loop for many prompts with one policy.

    Args:
        model: The student: writes the first reply to each prompt.
        policy: Principle selection and strictness (:func:`cai2_policy` or :func:`cai1_policy`).
        settings: Sampling, few-shot, judge and chunking settings.
        critic: Model that writes critiques and revisions; the student by default.
        judge: A judge object, overriding ``settings.judge``.
        assessor: Context assessor for the ``layered`` policy; the default MiniLM one if omitted.
    """

    def __init__(
        self,
        model: ChatModel,
        policy: CritiquePolicy | None = None,
        settings: CritiqueSettings | None = None,
        *,
        critic: ChatModel | None = None,
        judge: Any = None,
        assessor: ContextAssessorLike | None = None,
    ) -> None:
        self.model = model
        self.policy = policy or cai2_policy()
        self.settings = settings or CritiqueSettings()
        self.critic = critic or model
        self.constitution = load_constitution(self.policy.constitution)
        self._flat = self.constitution.flatten()
        self._pool = demonstration_pool(self.constitution)
        self._assessor = assessor
        self._resolved: dict[str, ActiveConstitution] = {}
        self.judge_note: str | None = None
        self.judge = judge if judge is not None else self._load_judge()

    def _load_judge(self) -> Any:
        name = self.settings.judge
        if name is None:
            return None
        try:
            from cai2.judges import build_judge

            return build_judge(name)
        except Exception as exc:  # any failure: degrade to critique-text decisions, and say so
            self.judge_note = f"judge `{name}` unavailable ({type(exc).__name__}: {exc})"
            return None

    @property
    def judge_name(self) -> str | None:
        """Name of the judge in use, or ``None``."""
        return None if self.judge is None else str(getattr(self.judge, "name", "judge"))

    def _contexts(self, items: Sequence[CritiqueItem]) -> list[Context]:
        if not self.policy.assess_context:
            return [Context() for _ in items]
        if self._assessor is None:
            from cai2.context import load_default_assessor

            self._assessor = load_default_assessor()
        return self._assessor.assess_batch([item.prompt for item in items])

    def _active(self, context: Context) -> ActiveConstitution:
        key = context.model_dump_json(exclude={"evidence"})
        if key not in self._resolved:
            self._resolved[key] = resolve(self._flat, context)
        return self._resolved[key]

    def _generate(
        self, model: ChatModel, conversations: list[Conversation], params: GenerationParams
    ) -> list[tuple[str, int]]:
        if not conversations:
            return []
        generations = model.generate(conversations, params)
        if len(generations) != len(conversations):
            raise ModelError(
                f"model `{model.spec}` returned {len(generations)} replies "
                f"for {len(conversations)} conversations"
            )
        return [(g.text.strip(), g.completion_tokens) for g in generations]

    def run_chunk(self, items: Sequence[CritiqueItem]) -> list[CritiqueRecord]:
        """Take ``items`` through every round together and return one record each."""
        contexts = self._contexts(items)
        states = [
            _State(item, context, self._active(context))
            for item, context in zip(items, contexts, strict=True)
        ]
        fresh = [s for s in states if s.item.response is None]
        replies = self._generate(
            self.model,
            [[{"role": "user", "content": s.item.prompt}] for s in fresh],
            self.settings.response,
        )
        for state, (text, tokens) in zip(fresh, replies, strict=True):
            state.current, state.tokens = text, tokens
        for state in states:
            if state.item.response is not None:
                state.current = state.item.response
            state.initial = state.current
        for round_index in range(self.policy.rounds):
            live = [s for s in states if s.stop_reason is None]
            if not live:
                break
            self._round(live, round_index)
        return [self._record(state) for state in states]

    def _round(self, states: list[_State], round_index: int) -> None:
        for state in states:
            used = [step.principle_id for step in state.steps]
            rng = step_rng(self.settings.seed, state.item.id, round_index)
            state.principle = select_principle(self.policy, state.active, round_index, used, rng)
            if state.principle is None:
                state.stop_reason = "no_principles"
        states = [s for s in states if s.principle is not None]
        demos = {
            id(s): pick_demonstrations(self._pool, s.principle, self.settings.few_shot)
            for s in states
            if s.principle is not None
        }
        critiques = self._generate(
            self.critic,
            [
                critique_conversation(s.item.prompt, s.current, s.principle, demos[id(s)])
                for s in states
                if s.principle is not None
            ],
            self.settings.critique,
        )
        p_violation: list[float | None] = [None] * len(states)
        if self.judge is not None and self.policy.skip_when_no_violation:
            from cai2.judges import JudgeItem

            verdicts = self._by_principle(
                states,
                lambda group, principle: self.judge.verdict_batch(
                    [JudgeItem.of(s.item.prompt, s.current) for s in group], [principle]
                ),
            )
            p_violation = [v.p_violation for v in verdicts]
        violating: list[tuple[_State, str, float | None, str]] = []
        for state, (critique, tokens), p in zip(states, critiques, p_violation, strict=True):
            state.tokens += tokens
            state.critique = critique
            if not self.policy.skip_when_no_violation:
                violating.append((state, "policy", p, critique))
            elif p is not None:
                if p >= self.settings.violation_threshold:
                    violating.append((state, self.judge_name or "judge", p, critique))
                else:
                    self._add_step(state, round_index, False, self.judge_name or "judge", p)
            elif critique_finds_violation(critique):
                violating.append((state, "critique", None, critique))
            else:
                self._add_step(state, round_index, False, "critique", None)
        revisions = self._generate(
            self.critic,
            [
                revision_conversation(s.item.prompt, s.current, critique, s.principle, demos[id(s)])
                for s, _, _, critique in violating
                if s.principle is not None
            ],
            self.settings.revision,
        )
        cleaned = []
        for (state, _, _, critique), (raw, tokens) in zip(violating, revisions, strict=True):
            state.tokens += tokens
            assert state.principle is not None
            cleaned.append(
                clean_revision(raw, state.current, state.principle.revision_request, critique)
            )
        preferences: list[float | None] = [None] * len(violating)
        if self.judge is not None and self.policy.require_preference:
            texts = {id(s): c.text for (s, _, _, _), c in zip(violating, cleaned, strict=True)}
            judged = [s for s, _, _, _ in violating if texts[id(s)] is not None]
            scores = self._by_principle(
                judged,
                lambda group, principle: self.judge.compare_batch(
                    [(s.item.prompt, texts[id(s)], s.current) for s in group], [principle]
                ),
            )
            by_state = {id(s): score for s, score in zip(judged, scores, strict=True)}
            preferences = [by_state.get(id(s)) for s, _, _, _ in violating]
        for (state, source, p, _), (raw, _), clean, preference in zip(
            violating, revisions, cleaned, preferences, strict=True
        ):
            self._add_step(
                state, round_index, True, source, p, raw=raw, clean=clean, preference=preference
            )
        for state in states:
            if self.policy.stop_when_unchanged and not state.steps[-1].accepted:
                state.stop_reason = "unchanged"

    @staticmethod
    def _by_principle(
        states: list[_State], judge_call: Callable[[list[_State], ActivePrinciple], list[Any]]
    ) -> list[Any]:
        """``judge_call`` once per principle (judges may judge per principle), results in order."""
        groups: dict[str, list[int]] = {}
        for index, state in enumerate(states):
            assert state.principle is not None
            groups.setdefault(state.principle.id, []).append(index)
        results: list[Any] = [None] * len(states)
        for indices in groups.values():
            group = [states[i] for i in indices]
            principle = group[0].principle
            assert principle is not None
            for index, value in zip(indices, judge_call(group, principle), strict=True):
                results[index] = value
        return results

    def _add_step(
        self,
        state: _State,
        round_index: int,
        violation: bool,
        source: str,
        p: float | None,
        *,
        raw: str | None = None,
        clean: Any = None,
        preference: float | None = None,
    ) -> None:
        principle = state.principle
        assert principle is not None
        text = clean.text if clean is not None else None
        addresses: bool | None = None
        reject: str | None = None
        accepted = False
        if text is not None:
            if self.policy.require_preference:
                risky = (
                    state.context.risk.rank >= RiskTier.medium.rank or state.item.kind == "harmful"
                )
                addresses = addresses_request(state.item.prompt, text, risky)
                if preference is not None and preference <= 0.5:
                    reject = "not_preferred"
                elif not addresses:
                    reject = "off_request"
            accepted = reject is None
        state.steps.append(
            CritiqueStep(
                round=round_index + 1,
                principle_id=principle.id,
                layer_id=principle.layer_id,
                depth=principle.depth,
                reply_before=state.current,
                critique=state.critique,
                violation=violation,
                violation_source=source,
                p_violation=p,
                revision_raw=raw,
                revision=text,
                drop_reason=clean.drop_reason if clean is not None else None,
                fixes=list(clean.fixes) if clean is not None else [],
                preference=preference,
                addresses_request=addresses,
                accepted=accepted,
                reject_reason=reject,
            )
        )
        if accepted and text is not None:
            state.current = text

    def _record(self, state: _State) -> CritiqueRecord:
        settings = self.settings
        return CritiqueRecord(
            id=state.item.id,
            kind=state.item.kind,
            prompt=state.item.prompt,
            risk=state.context.risk.value,
            domains=list(state.context.domains),
            complexity=state.context.complexity,
            constitution=f"{state.active.name}@{state.active.version}",
            active_principles=list(state.active.ids),
            policy=self.policy.name,
            initial_response=state.initial,
            final_response=state.current,
            revised=any(step.accepted for step in state.steps),
            stop_reason=state.stop_reason or "max_rounds",
            steps=state.steps,
            model=self.model.spec,
            critic=self.critic.spec,
            judge=self.judge_name,
            judge_note=self.judge_note,
            params={
                "response": settings.response.model_dump(mode="json"),
                "critique": settings.critique.model_dump(mode="json"),
                "revision": settings.revision.model_dump(mode="json"),
                "few_shot": settings.few_shot,
                "rounds": self.policy.rounds,
            },
            completion_tokens=state.tokens,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def run(
        self,
        items: Sequence[CritiqueItem],
        output: str | Path | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> tuple[list[CritiqueRecord], CritiqueStats]:
        """Run every item, chunk by chunk; with ``output`` (JSONL) finished prompts are skipped.

        Returns:
            The records of all ``items`` (read back from ``output`` for ones done earlier), in the
            order of ``items``, and the counts over them.
        """
        stats = CritiqueStats()
        by_id: dict[str, CritiqueRecord] = {}
        writer = JsonlWriter(output, id_key="id") if output is not None else None
        try:
            if writer is not None and writer.done_ids:
                from cai2.store import read_jsonl

                for row in read_jsonl(writer.path):
                    record = CritiqueRecord.model_validate(row)
                    by_id[record.id] = record
            todo = [item for item in items if item.id not in by_id]
            done = len(items) - len(todo)
            if progress is not None:
                progress(done, len(items))
            for start in range(0, len(todo), self.settings.chunk_size):
                chunk = todo[start : start + self.settings.chunk_size]
                began = time.perf_counter()
                records = self.run_chunk(chunk)
                stats.generate_seconds += time.perf_counter() - began
                for record in records:
                    by_id[record.id] = record
                    if writer is not None:
                        writer.append(record.model_dump(mode="json"))
                done += len(chunk)
                if progress is not None:
                    progress(done, len(items))
        finally:
            if writer is not None:
                writer.close()
        ordered = [by_id[item.id] for item in items]
        for record in ordered:
            stats.add(record)
        return ordered, stats
