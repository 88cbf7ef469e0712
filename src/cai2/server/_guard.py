"""The guard: assess → resolve → generate → oversee → revise or refuse → record, for one request.

Nothing a client receives leaves before its records are committed: the decision (with its chain
of verdicts) goes to the review queue's tables through :meth:`ReviewQueue.record`, and the request
record to ``cai2_serve_requests``, both while the guard holds its write lock, so concurrent
requests never interleave their checkpoint arithmetic and SQLite never sees two writers.

Mandatory checkpoints are enforced here: after ``human.checkpoint_every`` (K) answers released
without a person since the last checkpoint, the guard opens a checkpoint in the review queue;
until a reviewer clears it (in the web UI), every answer that would have been released is held
(the client gets ``hold_message``) and queued for review.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cai2.constitution import ActiveConstitution, load_constitution, resolve
from cai2.constitution._merge import FlattenedConstitution
from cai2.context import Context, ContextAssessor, Evidence, RiskTier, apply_rules, as_conversation
from cai2.models import ChatModel, Conversation, GenerationParams
from cai2.oversight import (
    Decision,
    OversightHierarchy,
    OversightItem,
    OversightRun,
    ReviewQueue,
    default_oversight_config,
    uniform_draw,
)
from cai2.oversight._hierarchy import HUMAN, RANDOM
from cai2.server._db import ServiceDB
from cai2.server._settings import ServeSettings

CHECKPOINT_REASON = "checkpoint"


class RulesAssessor:
    """Context from the explicit rules of :mod:`cai2.context` alone (no embedding model).

    Low risk and the ``general`` domain unless a rule fires; a fired rule sets at least its tier
    and adds its domains. The fast, dependency-free choice for a guard in front of a fast backend.
    """

    def assess(self, prompt_or_conversation: Any) -> Context:
        """Assess one prompt or conversation."""
        conversation = as_conversation(prompt_or_conversation)
        tier = RiskTier.low
        domains: list[str] = []
        evidence: list[Evidence] = []
        for hit in apply_rules(conversation):
            evidence.append(hit.evidence())
            tier = hit.rule.tier if hit.rule.tier.rank > tier.rank else tier
            domains.extend(d for d in hit.rule.domains if d not in domains)
        if not evidence:
            evidence.append(Evidence(source="rule", detail="no rule matched: low risk"))
        return Context(risk=tier, domains=domains or ["general"], evidence=evidence)

    def assess_batch(self, inputs: Sequence[Any]) -> list[Context]:
        """Assess many prompts or conversations."""
        return [self.assess(item) for item in inputs]


@dataclass
class GuardResult:
    """What the guard did with one request."""

    request_id: str
    content: str
    original: str
    action: str  # answered, revised, refused or held
    context: Context
    active: ActiveConstitution
    constitution_label: str
    decision: Decision
    revision_decision: Decision | None
    latency_ms: float
    backend_ms: float
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    checkpoint_waiting: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def extension(self) -> dict[str, Any]:
        """The ``cai2`` field of the response: active layers, verdicts and what was done."""
        return {
            "request_id": self.request_id,
            "action": self.action,
            "risk": self.context.risk.value,
            "domains": list(self.context.domains),
            "constitution": self.constitution_label,
            "layers": [
                {"id": layer.id, "kind": layer.kind, "reason": layer.reason}
                for layer in self.active.layers
            ],
            "principles": [p.id for p in self.active.principles],
            "violation": self.decision.violation,
            "p_violation": self.decision.p_violation,
            "decided_by": self.decision.decided_by,
            "verdicts": [link.model_dump(mode="json") for link in self.decision.chain],
            "revision_verdicts": (
                [link.model_dump(mode="json") for link in self.revision_decision.chain]
                if self.revision_decision is not None
                else None
            ),
            "human_review": self.decision.human_review,
            "human_reasons": list(self.decision.human_reasons),
            "checkpoint_waiting": self.checkpoint_waiting,
            "retrieve": (f"/v1/cai2/requests/{self.request_id}" if self.action == "held" else None),
            "latency_ms": round(self.latency_ms, 2),
            "backend_ms": round(self.backend_ms, 2),
        }


@dataclass(frozen=True)
class _Constitution:
    version: int
    label: str
    flat: FlattenedConstitution
    path: Path


class Guard:
    """Runs the guarded pipeline for requests; thread-safe.

    Args:
        settings: Service settings.
        model: The backend.
        db: The service tables.
        queue: The review queue (same database).
        assessor: Context assessor; built from ``settings.assessor`` when omitted.
        hierarchy: Judge hierarchy; built from ``settings.oversight`` (or the default) if omitted.
    """

    def __init__(
        self,
        settings: ServeSettings,
        model: ChatModel,
        db: ServiceDB,
        queue: ReviewQueue,
        *,
        assessor: Any = None,
        hierarchy: OversightHierarchy | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.db = db
        self.queue = queue
        if assessor is None:
            if settings.assessor == "rules":
                assessor = RulesAssessor()
            else:
                from cai2.context import load_default_assessor

                assessor = load_default_assessor()
        self.assessor: ContextAssessor | RulesAssessor = assessor
        self.hierarchy = hierarchy or OversightHierarchy(
            settings.oversight or default_oversight_config()
        )
        self.run = OversightRun(self.hierarchy, queue, settings.run_id)
        self._write_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._constitution_lock = threading.Lock()
        self._constitution: _Constitution | None = None
        self._engines: dict[int, Any] = {}
        self._workdir = Path(tempfile.mkdtemp(prefix="cai2-serve-"))
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cai2-assess")
        self.ensure_constitution()

    def scratch_path(self, name: str) -> Path:
        """A file in the guard's private scratch folder."""
        return self._workdir / name

    # -- constitution versions ------------------------------------------------------------------
    def ensure_constitution(self) -> None:
        """Store the configured constitution as version 1 when the database has none."""
        if self.db.newest_constitution_version():
            return
        source = self.settings.constitution
        from cai2.constitution import BUILTIN_CONSTITUTIONS, builtin_constitution_path

        path = (
            builtin_constitution_path(source) if source in BUILTIN_CONSTITUTIONS else Path(source)
        )
        constitution = load_constitution(source)
        self.db.add_constitution_version(
            constitution.name, path.read_text(encoding="utf-8"), "system", f"initial: {source}"
        )

    def current_constitution(self) -> _Constitution:
        """The newest stored version, loaded and flattened (cached per version)."""
        number = self.db.newest_constitution_version()
        with self._constitution_lock:
            cached = self._constitution
            if cached is not None and cached.version == number:
                return cached
            newest = self.db.constitution_version(number)
            path = self._workdir / f"constitution-v{newest.version}.yaml"
            path.write_text(newest.yaml_text, encoding="utf-8")
            constitution = load_constitution_text(newest.yaml_text, path)
            label = f"{constitution.name}@{constitution.version}#v{newest.version}"
            self._constitution = _Constitution(newest.version, label, constitution.flatten(), path)
            return self._constitution

    # -- the pipeline ---------------------------------------------------------------------------
    def handle(
        self,
        messages: Conversation,
        params: GenerationParams,
        *,
        client: str,
        stream: bool = False,
    ) -> GuardResult:
        """Guard one chat request and record it before returning."""
        start = time.perf_counter()
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        timings: dict[str, float] = {}

        # The reply does not depend on the assessment (the constitution is applied to the reply,
        # not to the prompt), so assessment and resolution run beside the backend's generation.
        assessed = self._pool.submit(self._assess_and_resolve, messages)
        with self._model_lock:  # backend_ms: the generation itself, without waiting for the lock
            backend_start = time.perf_counter()
            generation = self.model.generate([messages], params)[0]
            backend_ms = (time.perf_counter() - backend_start) * 1000
        context, constitution, active, assess_ms = assessed.result()
        timings["assess_resolve_ms"] = assess_ms

        judge_start = time.perf_counter()
        item = OversightItem(request_id, list(messages), generation.text, context.risk)
        decision = self._decide(item)
        content, action, revision_decision = generation.text, "answered", None
        if decision.violation is not False and decision.decided_by != "fast-path":
            content, action, revision_decision = self._revise_or_refuse(
                item, messages, context, constitution
            )
        timings["oversee_ms"] = (time.perf_counter() - judge_start) * 1000

        with self._write_lock:
            waiting = self._checkpoint_waiting()
            held: str | None = None
            if waiting and action in ("answered", "revised"):
                # Paused: nothing is released without a person, spot-checked or not. The answer
                # is kept for release once a person approves (GET /v1/cai2/requests/{id}).
                held, content, action = content, self.settings.hold_message, "held"
                decision = decision.model_copy(
                    update={
                        "human_review": True,
                        "human_reasons": [*decision.human_reasons, CHECKPOINT_REASON],
                        "human_inclusion_probability": 1.0,
                    }
                )
            latency_ms = (time.perf_counter() - start) * 1000
            self.queue.record(self.settings.run_id, [item], [decision])
            self.db.add_request(
                request_id=request_id,
                client=client,
                model=self.model.spec,
                messages=[dict(m) for m in messages],
                response=content,
                original_response=generation.text,
                held_response=held,
                action=action,
                risk=context.risk.value,
                domains=list(context.domains),
                constitution=constitution.label,
                layers=[layer.id for layer in active.layers],
                violation=decision.violation,
                p_violation=decision.p_violation,
                human_review=decision.human_review,
                chain=[link.model_dump(mode="json") for link in decision.chain],
                latency_ms=latency_ms,
                backend_ms=backend_ms,
                stream=stream,
            )
        finish = "content_filter" if action in ("refused", "held") else generation.finish_reason
        return GuardResult(
            request_id=request_id,
            content=content,
            original=generation.text,
            action=action,
            context=context,
            active=active,
            constitution_label=constitution.label,
            decision=decision,
            revision_decision=revision_decision,
            latency_ms=latency_ms,
            backend_ms=backend_ms,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            finish_reason="stop" if finish == "error" else finish,
            checkpoint_waiting=waiting,
            timings=timings,
        )

    def _assess_and_resolve(
        self, messages: Conversation
    ) -> tuple[Context, _Constitution, ActiveConstitution, float]:
        start = time.perf_counter()
        context = self.assessor.assess(
            [{"role": m["role"], "content": m["content"]} for m in messages]
        )
        constitution = self.current_constitution()
        active = resolve(constitution.flat, context)
        return context, constitution, active, (time.perf_counter() - start) * 1000

    def bare(self, messages: Conversation, params: GenerationParams) -> tuple[str, float]:
        """The backend alone (no guard, no record): (reply, milliseconds); for the benchmark."""
        start = time.perf_counter()
        with self._model_lock:
            text = self.model.generate([messages], params)[0].text
        return text, (time.perf_counter() - start) * 1000

    def _decide(self, item: OversightItem) -> Decision:
        if item.risk.rank >= self.settings.judge_min_risk.rank:
            return self.hierarchy.review([item])[0]
        # Low-risk fast path: no AI judge; a risk-weighted random share still goes to people.
        policy = self.hierarchy.config.human.sampling
        probability = min(1.0, policy.random_share * policy.risk_weights.get(item.risk, 1.0))
        draw = uniform_draw(self.hierarchy.config.seed, HUMAN, item.id)
        sampled = draw < probability
        return Decision(
            item_id=item.id,
            risk=item.risk,
            violation=False,
            p_violation=None,
            decided_by="fast-path",
            chain=[],
            human_review=sampled,
            human_reasons=[RANDOM] if sampled else [],
            human_inclusion_probability=probability,
        )

    def _revise_or_refuse(
        self,
        item: OversightItem,
        messages: Conversation,
        context: Context,
        constitution: _Constitution,
    ) -> tuple[str, str, Decision | None]:
        if not self.settings.revise or item.conversation[-1]["role"] != "user":
            return self.settings.refusal_message, "refused", None
        from cai2.critique import CritiqueItem

        engine = self._engine(constitution)
        with self._model_lock:
            record = engine.run_chunk(
                [CritiqueItem(item.id, item.conversation[-1]["content"], response=item.response)]
            )[0]
        if not record.revised or not record.final_response.strip():
            return self.settings.refusal_message, "refused", None
        revised = OversightItem(f"{item.id}#revised", item.conversation, record.final_response)
        revised = OversightItem(revised.id, revised.conversation, revised.response, context.risk)
        second = self.hierarchy.review([revised])[0]
        if second.violation is False:
            return record.final_response, "revised", second
        return self.settings.refusal_message, "refused", second

    def _engine(self, constitution: _Constitution) -> Any:
        from cai2.critique import CritiqueEngine, CritiqueSettings, cai2_policy

        engine = self._engines.get(constitution.version)
        if engine is None:
            engine = CritiqueEngine(
                self.model,
                cai2_policy(
                    rounds=self.settings.revision_rounds, constitution=str(constitution.path)
                ),
                CritiqueSettings(judge=None),
                judge=self.hierarchy.judges[-1],
                assessor=self.assessor,
            )
            self._engines = {constitution.version: engine}
        return engine

    # -- checkpoints ----------------------------------------------------------------------------
    def _checkpoint_waiting(self) -> bool:
        """Whether auto-approval is paused; opens the checkpoint when K is reached."""
        run_id = self.settings.run_id
        if self.queue.waiting_checkpoint(run_id) is not None:
            return True
        last = self.queue.last_checkpoint(run_id)
        since = self.db.auto_decisions_since(last.created_at if last is not None else None)
        k = self.hierarchy.config.human.checkpoint_every
        if since >= k:
            checks = len(self.queue.spot_checks(run_id)[0])
            self.queue.open_checkpoint(
                run_id,
                f"{since} answers released without review since the last checkpoint (K = {k})",
                checks,
            )
            return True
        return False

    def check_bound(self) -> str | None:
        """Open a checkpoint when the spot-check bound is exceeded (called after each review).

        Returns the reason when a checkpoint was opened.
        """
        human = self.hierarchy.config.human
        run_id = self.settings.run_id
        with self._write_lock:
            errors, _ = self.queue.spot_checks(run_id)
            if len(errors) < human.min_spot_checks:
                return None
            if self.queue.waiting_checkpoint(run_id) is not None:
                return None
            last = self.queue.last_checkpoint(run_id)
            if last is not None and last.spot_checks >= len(errors):
                return None
            bound = self.run.undetected_error_bound()
            if bound is None or bound.upper <= human.max_undetected_error:
                return None
            reason = (
                f"bound: undetected error ≤ {bound.upper:.3f} at {bound.confidence:.0%} exceeds "
                f"{human.max_undetected_error} after {len(errors)} spot-checks"
            )
            self.queue.open_checkpoint(run_id, reason, len(errors))
            return reason


def load_constitution_text(yaml_text: str, path: Path) -> Any:
    """Load a constitution from YAML text written to ``path`` (validated like any file).

    Raises:
        ConfigError: with line and key of the first problem.
    """
    path.write_text(yaml_text, encoding="utf-8")
    return load_constitution(path)
