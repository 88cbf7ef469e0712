"""The SQL index of runs and stages (SQLAlchemy 2, portable types only).

The index is a catalogue: it lets ``cai2 runs list`` answer without walking directories and lets
several machines share one PostgreSQL database. The run directory stays the source of the artifacts.
Only portable column types are used (strings, integers, timestamps, JSON), so any SQLAlchemy URL
works; SQLite gets WAL mode so readers do not block a running pipeline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from cai2.errors import StoreError


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC (portable) and returned timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise StoreError("timestamps written to the run index must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Base(DeclarativeBase):
    """Declarative base of the index tables."""


class RunRow(Base):
    """One run: a named execution of a config, with its own directory."""

    __tablename__ = "cai2_runs"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    config_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    directory: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    stages: Mapped[list[StageRow]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="StageRow.position"
    )


class StageRow(Base):
    """One stage of a run."""

    __tablename__ = "cai2_stages"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("cai2_runs.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    config_hash: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    run: Mapped[RunRow] = relationship(back_populates="stages")


def _configure_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: `cai2 runs list` can read while a pipeline writes; busy_timeout: wait instead of failing
    # when two processes write at once; foreign_keys: SQLite ignores ON DELETE CASCADE without it.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def open_index(url: str) -> Engine:
    """Connect to the index at ``url`` and create its tables if they are missing.

    Raises:
        StoreError: if the URL is malformed, its driver is missing or the database is unreachable.
    """
    try:
        parsed = make_url(url)
        engine = create_engine(parsed)
    except Exception as exc:  # SQLAlchemy raises several unrelated types here
        raise StoreError(
            f"cannot open the run index `{url}`: {exc}; use a SQLAlchemy URL such as "
            "`sqlite:///runs/index.sqlite` or `postgresql+psycopg://user@host/db`"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
    try:
        Base.metadata.create_all(engine)
    except Exception as exc:  # driver errors differ by backend
        engine.dispose()
        raise StoreError(f"cannot open the run index `{parsed!r}`: {exc}") from exc
    return engine
