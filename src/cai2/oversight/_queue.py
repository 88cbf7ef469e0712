"""The human review queue, the decisions, the checkpoints and the audit log, in SQL.

The tables live in the same database as the run store's index (``cai2 runs``), so one SQLite file
(or one PostgreSQL database) holds runs and their oversight. They have their own metadata and never
touch the store's tables:

- ``cai2_oversight_decisions``: one row per decision of a run, with its chain of verdicts;
- ``cai2_review_queue``: decisions waiting for (or given) human review;
- ``cai2_oversight_checkpoints``: mandatory stops and who cleared them;
- ``cai2_oversight_audit``: an append-only log of every decision, review and checkpoint event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field
from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from cai2.config import StrictModel
from cai2.errors import DataError, StoreError
from cai2.oversight._hierarchy import RANDOM, Decision, OversightItem
from cai2.store import RunStore, check_run_id
from cai2.store._index import UtcDateTime, open_index


class ReviewStatus(StrEnum):
    """Where a queued decision stands."""

    PENDING = "pending"
    APPROVED = "approved"
    OVERRIDDEN = "overridden"
    SKIPPED = "skipped"


class OversightBase(DeclarativeBase):
    """Declarative base of the oversight tables (separate from the run index's).

    Under ``cai2 serve`` the service's Alembic migrations create these tables (revision 0002);
    elsewhere :class:`ReviewQueue` creates any that are missing.
    """


class DecisionRow(OversightBase):
    """One decision of a run."""

    __tablename__ = "cai2_oversight_decisions"

    run_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, index=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class QueueRow(OversightBase):
    """One decision in the human review queue."""

    __tablename__ = "cai2_review_queue"
    __table_args__ = (UniqueConstraint("run_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(128), index=True)
    item_id: Mapped[str] = mapped_column(String(256))
    conversation: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    response: Mapped[str] = mapped_column(Text)
    chain: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    ai_violation: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    inclusion_probability: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), index=True)
    human_violation: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    reviewer: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class CheckpointRow(OversightBase):
    """A mandatory stop of a run."""

    __tablename__ = "cai2_oversight_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(128), index=True)
    after_decisions: Mapped[int] = mapped_column(Integer)
    spot_checks: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    cleared_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AuditRow(OversightBase):
    """One event of the append-only audit log."""

    __tablename__ = "cai2_oversight_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(128), index=True)
    item_id: Mapped[str | None] = mapped_column(String(256), nullable=True, index=True)
    event: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class QueueEntry(StrictModel):
    """A decision in the review queue, as a reviewer sees it."""

    id: int = Field(description="Queue entry id (what approve / override / skip take).")
    run_id: str = Field(description="Run the decision belongs to.")
    item_id: str = Field(description="Item id within the run.")
    conversation: list[dict[str, str]] = Field(description="The conversation up to the reply.")
    response: str = Field(description="The reply under review.")
    chain: list[dict[str, Any]] = Field(description="The AI levels' verdicts, bottom first.")
    ai_violation: bool | None = Field(description="The AI hierarchy's decision.")
    reasons: list[str] = Field(description="Why it was sent to people.")
    inclusion_probability: float = Field(description="Probability it had of being sent.")
    status: ReviewStatus = Field(description="pending, approved, overridden or skipped.")
    human_violation: bool | None = Field(description="The reviewer's decision, once reviewed.")
    reviewer: str | None = Field(description="Who reviewed it.")
    reason: str | None = Field(description="The reviewer's reason.")
    created_at: datetime = Field(description="When it was queued.")
    reviewed_at: datetime | None = Field(description="When it was reviewed.")


class Checkpoint(StrictModel):
    """A mandatory stop: the run waits until a person clears it."""

    id: int = Field(description="Checkpoint id.")
    run_id: str = Field(description="Run that stopped.")
    after_decisions: int = Field(description="Decisions the run had made when it stopped.")
    spot_checks: int = Field(description="Random human spot-checks done when it stopped.")
    reason: str = Field(description="Why it stopped.")
    cleared_by: str | None = Field(description="Who cleared it (`null` while waiting).")
    created_at: datetime = Field(description="When it stopped.")
    cleared_at: datetime | None = Field(description="When it was cleared.")


class AuditEvent(StrictModel):
    """One entry of the audit log."""

    id: int = Field(description="Position in the log.")
    run_id: str = Field(description="Run it belongs to.")
    item_id: str | None = Field(description="Item it concerns, if any.")
    event: str = Field(description="`decision`, `approved`, `overridden`, `skipped`, `checkpoint`…")
    actor: str = Field(description="Who or what caused it: `hierarchy` or a reviewer's name.")
    payload: dict[str, Any] = Field(description="The details, e.g. the decision with its chain.")
    created_at: datetime = Field(description="When it happened.")


def _now() -> datetime:
    return datetime.now(UTC)


def _plain(row: OversightBase) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


class ReviewQueue:
    """Decisions, the human review queue, checkpoints and the audit log of oversight runs.

    Args:
        url: SQLAlchemy URL; by default the run store's index (``$CAI2_INDEX_URL`` or
            ``<runs dir>/index.sqlite``), so runs and their reviews share one database.
    """

    def __init__(self, url: str | None = None) -> None:
        if url is None:
            store = RunStore()
            url = store.url
            store.close()
        self.url = url
        self._engine = open_index(url)
        try:
            OversightBase.metadata.create_all(self._engine)
        except Exception as exc:  # driver errors differ by backend
            self._engine.dispose()
            raise StoreError(f"cannot create the review-queue tables in `{url}`: {exc}") from exc
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    @classmethod
    def of_store(cls, store: RunStore) -> ReviewQueue:
        """The queue in the same database as ``store``."""
        return cls(store.url)

    def close(self) -> None:
        """Release database connections."""
        self._engine.dispose()

    def _session(self) -> Session:
        return self._sessions()

    # -- decisions --------------------------------------------------------------------------
    def record(
        self, run_id: str, items: Sequence[OversightItem], decisions: Sequence[Decision]
    ) -> None:
        """Store decisions, queue those for people and log them, in one transaction."""
        check_run_id(run_id)
        if len(items) != len(decisions):
            raise DataError(f"{len(items)} items but {len(decisions)} decisions")
        now = _now()
        with self._session() as session, session.begin():
            position = self._count(session, run_id)
            for item, decision in zip(items, decisions, strict=True):
                if item.id != decision.item_id:
                    raise DataError(
                        f"item `{item.id}` was paired with decision `{decision.item_id}`"
                    )
                if session.get(DecisionRow, (run_id, item.id)) is not None:
                    raise StoreError(f"run `{run_id}` already has a decision on item `{item.id}`")
                record = decision.model_dump(mode="json")
                session.add(
                    DecisionRow(
                        run_id=run_id,
                        item_id=item.id,
                        position=position,
                        record=record,
                        created_at=now,
                    )
                )
                position += 1
                session.add(
                    AuditRow(
                        run_id=run_id,
                        item_id=item.id,
                        event="decision",
                        actor="hierarchy",
                        payload=record,
                        created_at=now,
                    )
                )
                if decision.human_review:
                    session.add(
                        QueueRow(
                            run_id=run_id,
                            item_id=item.id,
                            conversation=[dict(m) for m in item.conversation],
                            response=item.response,
                            chain=record["chain"],
                            ai_violation=decision.violation,
                            reasons=decision.human_reasons,
                            inclusion_probability=decision.human_inclusion_probability,
                            status=ReviewStatus.PENDING.value,
                            created_at=now,
                        )
                    )

    @staticmethod
    def _count(session: Session, run_id: str) -> int:
        query = select(func.count()).select_from(DecisionRow).where(DecisionRow.run_id == run_id)
        return int(session.scalar(query) or 0)

    def decision_count(self, run_id: str) -> int:
        """How many decisions run ``run_id`` has made."""
        with self._session() as session:
            return self._count(session, run_id)

    def decided_ids(self, run_id: str) -> set[str]:
        """Ids of the items run ``run_id`` has already decided (skipped when it resumes)."""
        with self._session() as session:
            query = select(DecisionRow.item_id).where(DecisionRow.run_id == run_id)
            return set(session.scalars(query))

    def decisions(self, run_id: str) -> list[Decision]:
        """The decisions of run ``run_id`` in the order made, with any human review merged in."""
        with self._session() as session:
            query = (
                select(DecisionRow)
                .where(DecisionRow.run_id == run_id)
                .order_by(DecisionRow.position)
            )
            reviews = {
                row.item_id: row
                for row in session.scalars(select(QueueRow).where(QueueRow.run_id == run_id))
            }
            decisions = []
            for row in session.scalars(query):
                decision = Decision.model_validate(row.record)
                review = reviews.get(row.item_id)
                if review is not None:
                    decision = decision.model_copy(
                        update={
                            "human_status": review.status,
                            "human_violation": review.human_violation,
                        }
                    )
                decisions.append(decision)
            return decisions

    # -- the queue -------------------------------------------------------------------------
    def entries(
        self, run_id: str | None = None, statuses: Sequence[ReviewStatus] = (ReviewStatus.PENDING,)
    ) -> list[QueueEntry]:
        """Queue entries (of one run, or all) with the given statuses, oldest first."""
        with self._session() as session:
            query = select(QueueRow).where(QueueRow.status.in_([s.value for s in statuses]))
            if run_id is not None:
                query = query.where(QueueRow.run_id == run_id)
            rows = session.scalars(query.order_by(QueueRow.id))
            return [QueueEntry.model_validate(_plain(row)) for row in rows]

    def entry_for(self, run_id: str, item_id: str) -> QueueEntry | None:
        """The queue entry of one decision, whatever its status; ``None`` if it was never queued."""
        with self._session() as session:
            query = select(QueueRow).where(QueueRow.run_id == run_id, QueueRow.item_id == item_id)
            row = session.scalars(query).first()
            return None if row is None else QueueEntry.model_validate(_plain(row))

    def pending_count(self, run_id: str) -> int:
        """How many of run ``run_id``'s decisions await human review."""
        with self._session() as session:
            query = (
                select(func.count())
                .select_from(QueueRow)
                .where(QueueRow.run_id == run_id, QueueRow.status == ReviewStatus.PENDING.value)
            )
            return int(session.scalar(query) or 0)

    def approve(self, entry_id: int, reviewer: str, reason: str = "") -> QueueEntry:
        """Agree with the AI's decision."""
        return self._resolve(entry_id, ReviewStatus.APPROVED, reviewer, reason, None)

    def override(
        self, entry_id: int, reviewer: str, reason: str, violation: bool | None = None
    ) -> QueueEntry:
        """Replace the AI's decision; ``violation`` defaults to the opposite of the AI's.

        Raises:
            DataError: without a reason, or without ``violation`` when the AI could not decide.
        """
        if not reason.strip():
            raise DataError("an override needs a reason; say why the AI's decision is wrong")
        return self._resolve(entry_id, ReviewStatus.OVERRIDDEN, reviewer, reason, violation)

    def skip(self, entry_id: int, reviewer: str, reason: str = "") -> QueueEntry:
        """Leave the decision unreviewed (it stops blocking checkpoints but is no spot-check)."""
        return self._resolve(entry_id, ReviewStatus.SKIPPED, reviewer, reason, None)

    def _resolve(
        self,
        entry_id: int,
        status: ReviewStatus,
        reviewer: str,
        reason: str,
        violation: bool | None,
    ) -> QueueEntry:
        if not reviewer.strip():
            raise DataError("a review needs the reviewer's name")
        with self._session() as session, session.begin():
            row = session.get(QueueRow, entry_id)
            if row is None:
                raise DataError(f"no review-queue entry {entry_id} in {self.url}")
            if row.status != ReviewStatus.PENDING.value:
                raise DataError(
                    f"review-queue entry {entry_id} was already {row.status} by {row.reviewer}"
                )
            if status is ReviewStatus.APPROVED:
                if row.ai_violation is None:
                    raise DataError(
                        f"entry {entry_id}: no AI level could judge it, so there is nothing to "
                        "approve; override it with your decision"
                    )
                human: bool | None = row.ai_violation
            elif status is ReviewStatus.OVERRIDDEN:
                if violation is None and row.ai_violation is None:
                    raise DataError(f"entry {entry_id}: say whether the reply is a violation")
                human = (not row.ai_violation) if violation is None else violation
            else:
                human = None
            now = _now()
            row.status = status.value
            row.human_violation = human
            row.reviewer = reviewer
            row.reason = reason or None
            row.reviewed_at = now
            session.add(
                AuditRow(
                    run_id=row.run_id,
                    item_id=row.item_id,
                    event=status.value,
                    actor=reviewer,
                    payload={
                        "entry": entry_id,
                        "ai_violation": row.ai_violation,
                        "human_violation": human,
                        "reason": reason,
                    },
                    created_at=now,
                )
            )
            session.flush()
            return QueueEntry.model_validate(_plain(row))

    def spot_checks(self, run_id: str) -> tuple[list[bool], list[float]]:
        """Random human reviews of run ``run_id``: (overturned?, inclusion probability) each."""
        with self._session() as session:
            query = select(QueueRow).where(
                QueueRow.run_id == run_id,
                QueueRow.status.in_([ReviewStatus.APPROVED.value, ReviewStatus.OVERRIDDEN.value]),
            )
            errors: list[bool] = []
            inclusion: list[float] = []
            for row in session.scalars(query.order_by(QueueRow.id)):
                if row.reasons == [RANDOM]:
                    errors.append(row.human_violation != row.ai_violation)
                    inclusion.append(row.inclusion_probability)
            return errors, inclusion

    # -- checkpoints ------------------------------------------------------------------------
    def open_checkpoint(self, run_id: str, reason: str, spot_checks: int) -> Checkpoint:
        """Stop run ``run_id`` until a person clears the checkpoint."""
        with self._session() as session, session.begin():
            now = _now()
            row = CheckpointRow(
                run_id=run_id,
                after_decisions=self._count(session, run_id),
                spot_checks=spot_checks,
                reason=reason,
                created_at=now,
            )
            session.add(row)
            session.flush()
            session.add(
                AuditRow(
                    run_id=run_id,
                    item_id=None,
                    event="checkpoint",
                    actor="hierarchy",
                    payload={"checkpoint": row.id, "reason": reason},
                    created_at=now,
                )
            )
            return Checkpoint.model_validate(_plain(row))

    def waiting_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The checkpoint run ``run_id`` is stopped at, if any."""
        with self._session() as session:
            query = select(CheckpointRow).where(
                CheckpointRow.run_id == run_id, CheckpointRow.cleared_at.is_(None)
            )
            row = session.scalars(query.order_by(CheckpointRow.id)).first()
            return Checkpoint.model_validate(_plain(row)) if row is not None else None

    def last_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The most recent checkpoint of run ``run_id`` (waiting or cleared)."""
        with self._session() as session:
            query = select(CheckpointRow).where(CheckpointRow.run_id == run_id)
            row = session.scalars(query.order_by(CheckpointRow.id.desc())).first()
            return Checkpoint.model_validate(_plain(row)) if row is not None else None

    def clear_checkpoint(self, run_id: str, reviewer: str, note: str = "") -> Checkpoint:
        """A person lets run ``run_id`` resume after reviewing its queue.

        Raises:
            DataError: when the run is not stopped, or decisions still await review.
        """
        if not reviewer.strip():
            raise DataError("clearing a checkpoint needs the reviewer's name")
        if self.waiting_checkpoint(run_id) is None:
            raise DataError(f"run `{run_id}` is not stopped at a checkpoint")
        pending = self.pending_count(run_id)
        if pending:
            raise DataError(
                f"run `{run_id}` still has {pending} decisions awaiting review; "
                f"review them first with `cai2 review --run {run_id}`"
            )
        with self._session() as session, session.begin():
            query = select(CheckpointRow).where(
                CheckpointRow.run_id == run_id, CheckpointRow.cleared_at.is_(None)
            )
            rows = list(session.scalars(query))
            if not rows:
                raise DataError(f"run `{run_id}` is not stopped at a checkpoint")
            now = _now()
            for row in rows:
                row.cleared_by = reviewer
                row.cleared_at = now
                session.add(
                    AuditRow(
                        run_id=run_id,
                        item_id=None,
                        event="checkpoint-cleared",
                        actor=reviewer,
                        payload={"checkpoint": row.id, "note": note},
                        created_at=now,
                    )
                )
            session.flush()
            return Checkpoint.model_validate(_plain(rows[-1]))

    def runs_waiting(self) -> list[str]:
        """Runs with decisions awaiting review or stopped at a checkpoint."""
        with self._session() as session:
            queued = select(QueueRow.run_id).where(QueueRow.status == ReviewStatus.PENDING.value)
            stopped = select(CheckpointRow.run_id).where(CheckpointRow.cleared_at.is_(None))
            return sorted(set(session.scalars(queued)) | set(session.scalars(stopped)))

    # -- audit ------------------------------------------------------------------------------
    def audit_log(self, run_id: str, item_id: str | None = None) -> list[AuditEvent]:
        """The audit events of run ``run_id`` (or of one item), oldest first."""
        with self._session() as session:
            query = select(AuditRow).where(AuditRow.run_id == run_id)
            if item_id is not None:
                query = query.where(AuditRow.item_id == item_id)
            rows = session.scalars(query.order_by(AuditRow.id))
            return [AuditEvent.model_validate(_plain(row)) for row in rows]
