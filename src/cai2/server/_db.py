"""The service's own tables: API keys, reviewer accounts, sessions, request records, constitutions.

They live next to the review-queue tables of :mod:`cai2.oversight` (decisions, queue, checkpoints,
audit log) in one database: SQLite with WAL by default, PostgreSQL by URL. Both sets are created
and upgraded by the Alembic migrations in ``cai2/server/migrations`` (version table
``cai2_serve_alembic_version``), so an old database upgrades in place.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from cai2.errors import DataError, StoreError
from cai2.store._index import UtcDateTime, open_index

Role = Literal["reviewer", "admin"]
ROLES: tuple[str, ...] = ("reviewer", "admin")
VERSION_TABLE = "cai2_serve_alembic_version"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class ServeBase(DeclarativeBase):
    """Declarative base of the service's tables (the migrations' target metadata)."""


class ApiKeyRow(ServeBase):
    """A client API key; only its SHA-256 is stored."""

    __tablename__ = "cai2_serve_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class UserRow(ServeBase):
    """A reviewer account; the password is stored as an scrypt hash with its own salt."""

    __tablename__ = "cai2_serve_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class SessionRow(ServeBase):
    """A logged-in browser session; the cookie holds the token, the table its SHA-256."""

    __tablename__ = "cai2_serve_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("cai2_serve_users.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RequestRow(ServeBase):
    """The audit record of one guarded request, written before the answer leaves the server."""

    __tablename__ = "cai2_serve_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    client: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(256))
    messages: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    response: Mapped[str] = mapped_column(Text)
    original_response: Mapped[str] = mapped_column(Text)
    held_response: Mapped[str | None] = mapped_column(Text, nullable=True)
    action: Mapped[str] = mapped_column(String(16), index=True)
    risk: Mapped[str] = mapped_column(String(16))
    domains: Mapped[list[str]] = mapped_column(JSON)
    constitution: Mapped[str] = mapped_column(String(256))
    layers: Mapped[list[str]] = mapped_column(JSON)
    violation: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    p_violation: Mapped[float | None] = mapped_column(Float, nullable=True)
    human_review: Mapped[bool] = mapped_column(Boolean)
    chain: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    backend_ms: Mapped[float] = mapped_column(Float)
    stream: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class ConstitutionRow(ServeBase):
    """One version of the service's constitution; the highest version is in force."""

    __tablename__ = "cai2_serve_constitutions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(256))
    yaml_text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


@dataclass(frozen=True)
class User:
    """A reviewer as the web UI sees it."""

    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        """Whether the user may change the constitution and manage accounts."""
        return self.role == "admin"


@dataclass(frozen=True)
class ConstitutionVersion:
    """One stored constitution version."""

    version: int
    name: str
    yaml_text: str
    author: str
    note: str
    created_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of ``text`` (API keys and session tokens are random, so no salt is needed)."""
    return hashlib.sha256(text.encode()).hexdigest()


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` of ``password`` with a fresh 16-byte salt."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    n, r, p = _SCRYPT["n"], _SCRYPT["r"], _SCRYPT["p"]
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string (constant-time compare)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), dklen=32, n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate.hex(), digest)


OVERSIGHT_TABLE_PREFIXES = ("cai2_oversight_", "cai2_review_queue")


def owns_table(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic ``include_name`` hook: the service's and the review queue's tables, nothing else."""
    if type_ != "table":
        return True
    return bool(name and name.startswith(("cai2_serve_", *OVERSIGHT_TABLE_PREFIXES)))


def upgrade_schema(engine: Engine) -> None:
    """Bring the service's tables to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class ServiceDB:
    """The service's tables behind small, typed methods.

    Args:
        url: SQLAlchemy URL; SQLite files get WAL mode and a busy timeout.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_index(url)
        try:
            upgrade_schema(self.engine)
        except Exception as exc:  # driver and migration errors differ by backend
            self.engine.dispose()
            raise StoreError(f"cannot migrate the service tables in `{url}`: {exc}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()

    def session(self) -> Session:
        """A new ORM session."""
        return self._sessions()

    # -- API keys ---------------------------------------------------------------------------
    def create_api_key(self, name: str) -> str:
        """Create a key for client ``name``; the key is returned once and stored hashed."""
        if not name.strip():
            raise DataError("an API key needs a client name")
        key = "cai2-" + secrets.token_urlsafe(32)
        with self.session() as session, session.begin():
            if session.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name)) is not None:
                raise DataError(f"an API key named `{name}` exists; revoke it or pick another")
            session.add(
                ApiKeyRow(name=name, key_hash=sha256_hex(key), prefix=key[:9], created_at=_now())
            )
        return key

    def revoke_api_key(self, name: str) -> None:
        """Revoke the key of client ``name``."""
        with self.session() as session, session.begin():
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name))
            if row is None:
                raise DataError(f"no API key named `{name}`")
            row.revoked_at = _now()

    def client_of_key(self, key: str) -> str | None:
        """The client name of a valid, unrevoked key, else ``None``."""
        with self.session() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == sha256_hex(key)))
            if row is None or row.revoked_at is not None:
                return None
            return row.name

    # -- reviewer accounts and sessions -------------------------------------------------------
    def create_user(self, username: str, password: str, role: str = "reviewer") -> User:
        """Add a reviewer account.

        Raises:
            DataError: for an unknown role, a short password or a taken name.
        """
        if role not in ROLES:
            raise DataError(f"unknown role `{role}`; use one of {', '.join(ROLES)}")
        if not username.strip() or len(username) > 128:
            raise DataError("a username must be 1-128 characters")
        if len(password) < 8:
            raise DataError("a password needs at least 8 characters")
        with self.session() as session, session.begin():
            row = UserRow(
                username=username,
                password_hash=hash_password(password),
                role=role,
                created_at=_now(),
            )
            session.add(row)
            try:
                session.flush()
            except IntegrityError as exc:
                raise DataError(f"user `{username}` exists") from exc
            return User(row.id, row.username, row.role)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password matches, else ``None``."""
        with self.session() as session:
            row = session.scalar(select(UserRow).where(UserRow.username == username))
            if row is None:
                hash_password(password)  # same work either way: no timing hint that names exist
                return None
            if not verify_password(password, row.password_hash):
                return None
            return User(row.id, row.username, row.role)

    def open_session(self, user: User, hours: float) -> tuple[str, str]:
        """Start a session; returns (cookie token, CSRF token)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = _now()
        with self.session() as session, session.begin():
            session.add(
                SessionRow(
                    token_hash=sha256_hex(token),
                    user_id=user.id,
                    csrf=csrf,
                    created_at=now,
                    expires_at=now + timedelta(hours=hours),
                )
            )
        return token, csrf

    def session_user(self, token: str) -> tuple[User, str] | None:
        """(user, CSRF token) of a live session, else ``None``."""
        with self.session() as session:
            row = session.get(SessionRow, sha256_hex(token))
            if row is None or row.expires_at < _now():
                return None
            user = session.get(UserRow, row.user_id)
            if user is None:
                return None
            return User(user.id, user.username, user.role), row.csrf

    def close_session(self, token: str) -> None:
        """Log a session out."""
        with self.session() as session, session.begin():
            row = session.get(SessionRow, sha256_hex(token))
            if row is not None:
                session.delete(row)

    # -- request records ----------------------------------------------------------------------
    def add_request(self, **fields: Any) -> None:
        """Write one request's audit record (committed before returning)."""
        with self.session() as session, session.begin():
            session.add(RequestRow(created_at=_now(), **fields))

    def request_count(self) -> int:
        """How many request records exist."""
        with self.session() as session:
            return int(session.scalar(select(func.count()).select_from(RequestRow)) or 0)

    def auto_decisions_since(self, since: datetime | None) -> int:
        """Answers released without a person since ``since`` (all of them when ``None``)."""
        query = (
            select(func.count())
            .select_from(RequestRow)
            .where(RequestRow.action != "held", RequestRow.human_review.is_(False))
        )
        if since is not None:
            query = query.where(RequestRow.created_at > since)
        with self.session() as session:
            return int(session.scalar(query) or 0)

    def requests(self, limit: int | None = None) -> list[RequestRow]:
        """Request records, oldest first (the last ``limit`` when given)."""
        with self.session() as session:
            query = select(RequestRow).order_by(RequestRow.id.desc())
            if limit is not None:
                query = query.limit(limit)
            return list(reversed(list(session.scalars(query))))

    def request(self, request_id: str) -> RequestRow | None:
        """One request record by its id."""
        with self.session() as session:
            return session.scalar(select(RequestRow).where(RequestRow.request_id == request_id))

    # -- constitution versions --------------------------------------------------------------
    def constitution_versions(self) -> list[ConstitutionVersion]:
        """Every stored version, newest first."""
        with self.session() as session:
            rows = session.scalars(select(ConstitutionRow).order_by(ConstitutionRow.version.desc()))
            return [
                ConstitutionVersion(r.version, r.name, r.yaml_text, r.author, r.note, r.created_at)
                for r in rows
            ]

    def newest_constitution_version(self) -> int:
        """Number of the version in force (0 when none is stored)."""
        with self.session() as session:
            return int(session.scalar(select(func.max(ConstitutionRow.version))) or 0)

    def constitution_version(self, version: int) -> ConstitutionVersion:
        """One stored version.

        Raises:
            DataError: when it does not exist.
        """
        with self.session() as session:
            r = session.get(ConstitutionRow, version)
            if r is None:
                raise DataError(f"no constitution version {version}")
            return ConstitutionVersion(
                r.version, r.name, r.yaml_text, r.author, r.note, r.created_at
            )

    def add_constitution_version(
        self, name: str, yaml_text: str, author: str, note: str
    ) -> ConstitutionVersion:
        """Store a new version (number = newest + 1); the caller validated the YAML."""
        with self.session() as session, session.begin():
            newest = session.scalar(select(func.max(ConstitutionRow.version))) or 0
            row = ConstitutionRow(
                version=newest + 1,
                name=name,
                yaml_text=yaml_text,
                author=author,
                note=note,
                created_at=_now(),
            )
            session.add(row)
        return ConstitutionVersion(
            row.version, row.name, row.yaml_text, row.author, row.note, row.created_at
        )
