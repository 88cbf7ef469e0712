"""Run directories plus their SQL index.

Layout of one run (``<root>/<run id>/``)::

    config.yaml              the resolved config the run was made from
    metrics.json             {"run": {...}, "stages": {"<stage>": {...}}}
    run.log                  timestamped log lines
    artifacts/<stage>/...    JSONL (and other) artifacts, one folder per stage

The index (default ``sqlite:///<root>/index.sqlite``) holds one row per run and per stage with
status, timestamps, metrics and the hash of the config, so listing and resuming need no directory
walk.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from cai2.errors import StoreError
from cai2.store._files import (
    JsonlWriter,
    JsonRecord,
    atomic_write_json,
    atomic_write_text,
    read_json,
    read_jsonl,
)
from cai2.store._index import RunRow, StageRow, open_index

RUNS_DIR_ENV = "CAI2_RUNS_DIR"
INDEX_URL_ENV = "CAI2_INDEX_URL"
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MetricValue = float | int | str | bool | None


class Status(StrEnum):
    """Lifecycle of a run or a stage."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RunNotFoundError(StoreError):
    """The requested run id is not in the index (a user mistake, hence exit code 2)."""

    exit_code = 2


def config_hash(config: Any) -> str:
    """SHA-256 of the canonical JSON of ``config`` (key order and whitespace do not matter)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def check_run_id(run_id: str, what: str = "run id") -> str:
    """Return ``run_id`` if it is a safe directory name, else raise StoreError saying why."""
    if not _ID_PATTERN.match(run_id):
        raise StoreError(
            f"invalid {what} `{run_id}`: use 1-128 letters, digits, `.`, `_` or `-`, "
            "starting with a letter or digit"
        )
    return run_id


def _now() -> datetime:
    return datetime.now(UTC)


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")
    return slug[:80] or "run"


@dataclass(frozen=True)
class StageRecord:
    """A stage as the index knows it."""

    name: str
    kind: str
    position: int
    status: Status
    config_hash: str
    started_at: datetime | None
    finished_at: datetime | None
    metrics: dict[str, Any]
    error: str | None

    @classmethod
    def _from_row(cls, row: StageRow) -> StageRecord:
        return cls(
            name=row.name,
            kind=row.kind,
            position=row.position,
            status=Status(row.status),
            config_hash=row.config_hash,
            started_at=row.started_at,
            finished_at=row.finished_at,
            metrics=dict(row.metrics or {}),
            error=row.error,
        )


@dataclass(frozen=True)
class RunRecord:
    """A run as the index knows it."""

    id: str
    name: str
    status: Status
    config_hash: str
    created_at: datetime
    updated_at: datetime
    directory: Path
    metrics: dict[str, Any]
    error: str | None
    stages: tuple[StageRecord, ...]

    @classmethod
    def _from_row(cls, row: RunRow, directory: Path) -> RunRecord:
        return cls(
            id=row.id,
            name=row.name,
            status=Status(row.status),
            config_hash=row.config_hash,
            created_at=row.created_at,
            updated_at=row.updated_at,
            directory=directory,
            metrics=dict(row.metrics or {}),
            error=row.error,
            stages=tuple(StageRecord._from_row(stage) for stage in row.stages),
        )


class RunStore:
    """Run directories under ``root`` indexed in a SQL database.

    Args:
        root: Directory that holds one folder per run. Default: ``$CAI2_RUNS_DIR`` or ``./runs``.
        url: SQLAlchemy URL of the index. Default: ``$CAI2_INDEX_URL`` or
            ``sqlite:///<root>/index.sqlite``. Any backend SQLAlchemy supports works, e.g.
            ``postgresql+psycopg://user@host/cai2``.

    Example:
        >>> store = RunStore("runs")  # doctest: +SKIP
        >>> run = store.create_run("smoke", {"model": "hf:tiny"})  # doctest: +SKIP
        >>> run.append_jsonl("gen/out.jsonl", {"id": "p1", "text": "hi"})  # doctest: +SKIP
    """

    def __init__(self, root: str | Path | None = None, *, url: str | None = None) -> None:
        self.root = Path(root or os.environ.get(RUNS_DIR_ENV) or "runs").expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = url or os.environ.get(INDEX_URL_ENV) or f"sqlite:///{self.root / 'index.sqlite'}"
        self._engine: Engine = open_index(self.url)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    def close(self) -> None:
        """Release database connections."""
        self._engine.dispose()

    def _session(self) -> Session:
        return self._sessions()

    def create_run(self, name: str, config: Mapping[str, Any], *, run_id: str | None = None) -> Run:
        """Create a run directory and its index row.

        Args:
            name: Human name of the run (e.g. the recipe name).
            config: The resolved config; saved as ``config.yaml`` and hashed.
            run_id: Directory name; default ``<name>-<UTC time>-<random>``.

        Raises:
            StoreError: if the id is invalid or already used.
        """
        if run_id is None:
            run_id = f"{_slug(name)}-{_now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        check_run_id(run_id)
        directory = self.root / run_id
        config_dict = _plain(config)
        with self._session() as session, session.begin():
            if session.get(RunRow, run_id) is not None:
                raise StoreError(
                    f"run `{run_id}` already exists in {self.root}; pick another id or delete it"
                )
            if directory.exists() and any(directory.iterdir()):
                raise StoreError(
                    f"{directory} exists but is not in the run index; move it away or delete it"
                )
            directory.mkdir(parents=True, exist_ok=True)
            atomic_write_text(directory / "config.yaml", _to_yaml(config_dict))
            atomic_write_json(directory / "metrics.json", {"run": {}, "stages": {}})
            now = _now()
            session.add(
                RunRow(
                    id=run_id,
                    name=name,
                    status=Status.PENDING.value,
                    config_hash=config_hash(config_dict),
                    created_at=now,
                    updated_at=now,
                    directory=str(directory),
                    metrics={},
                    error=None,
                )
            )
        run = Run(self, run_id, directory)
        run.log(f"created run `{run_id}` ({name})")
        return run

    def find_run(self, run_id: str) -> Run | None:
        """The run with id ``run_id``, or ``None`` if the index has no such run."""
        with self._session() as session:
            row = session.get(RunRow, run_id)
            return Run(self, row.id, self._directory(row)) if row is not None else None

    def _directory(self, row: RunRow) -> Path:
        """A run's folder: the one the index recorded, or ``<root>/<id>`` when that moved here.

        Moving or copying a runs folder takes its SQLite index along, and the index still names the
        old place; a run found under this store's root is used then.
        """
        recorded = Path(row.directory)
        here = self.root / row.id
        return here if not recorded.exists() and here.is_dir() else recorded

    def get_run(self, run_id: str) -> Run:
        """The run with id ``run_id``.

        Raises:
            RunNotFoundError: if there is no such run (the message lists how to see the known ones).
        """
        run = self.find_run(run_id)
        if run is None:
            raise RunNotFoundError(
                f"no run `{run_id}` in {self.url}; `cai2 runs list` shows the known runs"
            )
        return run

    def list_runs(self) -> list[RunRecord]:
        """Every run in the index, newest first."""
        with self._session() as session:
            query = (
                select(RunRow)
                .options(selectinload(RunRow.stages))
                .order_by(RunRow.created_at.desc(), RunRow.id.desc())
            )
            rows = session.scalars(query).all()
            return [RunRecord._from_row(row, self._directory(row)) for row in rows]

    def delete_run(self, run_id: str) -> None:
        """Remove a run's index rows and its directory (no error if it does not exist)."""
        with self._session() as session, session.begin():
            row = session.get(RunRow, run_id)
            directory = (
                self._directory(row) if row is not None else self.root / check_run_id(run_id)
            )
            if row is not None:
                session.delete(row)
        if directory.exists():
            shutil.rmtree(directory)

    def _record(self, run_id: str) -> RunRecord:
        with self._session() as session:
            row = session.get(RunRow, run_id)
            if row is None:
                raise RunNotFoundError(f"run `{run_id}` was deleted from {self.url}")
            return RunRecord._from_row(row, self._directory(row))

    def _update_run(self, run_id: str, **values: Any) -> None:
        with self._session() as session, session.begin():
            row = session.get(RunRow, run_id)
            if row is None:
                raise RunNotFoundError(f"run `{run_id}` was deleted from {self.url}")
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = _now()

    def _update_stage(self, run_id: str, name: str, **values: Any) -> StageRecord:
        with self._session() as session, session.begin():
            row = session.get(StageRow, (run_id, name))
            if row is None:
                raise StoreError(f"run `{run_id}` has no stage `{name}`")
            for key, value in values.items():
                setattr(row, key, value)
            run_row = session.get(RunRow, run_id)
            if run_row is not None:
                run_row.updated_at = _now()
            return StageRecord._from_row(row)


class Run:
    """Handle on one run: its directory, files and index rows. Get one from :class:`RunStore`."""

    def __init__(self, store: RunStore, run_id: str, directory: Path) -> None:
        self.store = store
        self.id = run_id
        self.dir = directory

    def __repr__(self) -> str:
        return f"Run({self.id!r}, dir={str(self.dir)!r})"

    @property
    def record(self) -> RunRecord:
        """Fresh index record of this run (status, metrics, stages)."""
        return self.store._record(self.id)

    @property
    def status(self) -> Status:
        """Current status from the index."""
        return self.record.status

    @property
    def config(self) -> dict[str, Any]:
        """The config saved with the run."""
        loaded = yaml.safe_load((self.dir / "config.yaml").read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else {}

    @property
    def log_path(self) -> Path:
        """The run's log file."""
        return self.dir / "run.log"

    @property
    def artifacts_dir(self) -> Path:
        """Folder holding the artifacts, one sub-folder per stage."""
        return self.dir / "artifacts"

    def set_config(self, config: Mapping[str, Any]) -> None:
        """Replace the saved config (atomically) and its hash in the index."""
        config_dict = _plain(config)
        atomic_write_text(self.dir / "config.yaml", _to_yaml(config_dict))
        self.store._update_run(self.id, config_hash=config_hash(config_dict))

    def set_status(self, status: Status, error: str | None = None) -> None:
        """Record a status change of the whole run (``error`` is kept for ``failed``)."""
        self.store._update_run(self.id, status=Status(status).value, error=error)
        self.log(f"run {Status(status).value}" + (f": {error}" if error else ""))

    def log(self, message: str) -> None:
        """Append a timestamped line to ``run.log``."""
        with self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(f"{_now().isoformat(timespec='seconds')} {message}\n")

    def path(self, relative: str | Path) -> Path:
        """Absolute path of ``relative`` inside the run's artifact folder.

        Raises:
            StoreError: if ``relative`` escapes the run directory.
        """
        target = (self.artifacts_dir / relative).resolve()
        if not target.is_relative_to(self.dir.resolve()):
            raise StoreError(f"artifact path `{relative}` is outside run `{self.id}`")
        return target

    def write_json(self, relative: str | Path, data: Any) -> Path:
        """Atomically write ``data`` as JSON to ``artifacts/<relative>``."""
        return atomic_write_json(self.path(relative), data)

    def read_json(self, relative: str | Path) -> Any:
        """Read ``artifacts/<relative>`` as JSON."""
        return read_json(self.path(relative))

    def append_jsonl(self, relative: str | Path, record: Mapping[str, Any]) -> None:
        """Durably append one record to ``artifacts/<relative>`` (:meth:`open_jsonl` for loops)."""
        with self.open_jsonl(relative) as writer:
            writer.append(record)

    def open_jsonl(self, relative: str | Path, *, id_key: str | None = None) -> JsonlWriter:
        """A resumable writer for ``artifacts/<relative>``; see ``writer.done_ids``."""
        return JsonlWriter(self.path(relative), id_key=id_key)

    def read_jsonl(self, relative: str | Path, *, missing_ok: bool = False) -> list[JsonRecord]:
        """Records of ``artifacts/<relative>``, tolerating a torn last line."""
        return read_jsonl(self.path(relative), missing_ok=missing_ok)

    def export_parquet(self, relative: str | Path) -> Path:
        """Write the JSONL artifact ``relative`` as Parquet beside it (``.parquet`` suffix).

        Raises:
            StoreError: if pyarrow (installed with ``datasets``) is missing.
        """
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise StoreError("Parquet export needs pyarrow: `pip install pyarrow`") from exc
        source = self.path(relative)
        target = source.with_suffix(".parquet")
        table = pa.Table.from_pylist(read_jsonl(source))
        temp = target.with_name(f".{target.name}.tmp")
        pq.write_table(table, temp)
        os.replace(temp, target)
        return target

    def artifact_paths(self) -> list[Path]:
        """Every artifact file of the run, sorted."""
        if not self.artifacts_dir.exists():
            return []
        return sorted(
            p for p in self.artifacts_dir.rglob("*") if p.is_file() and not p.name.startswith(".")
        )

    def metrics(self) -> dict[str, Any]:
        """Contents of ``metrics.json``: ``{"run": {...}, "stages": {name: {...}}}``."""
        data = read_json(self.dir / "metrics.json")
        return data if isinstance(data, dict) else {"run": {}, "stages": {}}

    def log_metrics(self, metrics: Mapping[str, MetricValue], *, stage: str | None = None) -> None:
        """Merge ``metrics`` into ``metrics.json`` and the index (of the run or of ``stage``)."""
        current = self.metrics()
        current.setdefault("run", {})
        current.setdefault("stages", {})
        if stage is None:
            current["run"].update(metrics)
            atomic_write_json(self.dir / "metrics.json", current)
            self.store._update_run(self.id, metrics=dict(current["run"]))
        else:
            current["stages"].setdefault(stage, {}).update(metrics)
            atomic_write_json(self.dir / "metrics.json", current)
            self.store._update_stage(self.id, stage, metrics=dict(current["stages"][stage]))

    def stages(self) -> list[StageRecord]:
        """Index records of the run's stages, in order."""
        return list(self.record.stages)

    def stage(
        self,
        name: str,
        *,
        kind: str | None = None,
        position: int | None = None,
        config_hash: str = "",
    ) -> Stage:
        """Handle on stage ``name``, adding it to the index (as ``pending``) on first use.

        Args:
            name: Stage id, unique within the run; also its artifact folder name.
            kind: What the stage does (e.g. ``generate``); defaults to ``name``.
            position: Order within the run; defaults to after the existing stages.
            config_hash: Hash of the stage's config, checked by resumable runners.
        """
        check_run_id(name, "stage name")
        with self.store._session() as session, session.begin():
            row = session.get(StageRow, (self.id, name))
            if row is not None and row.status == Status.PENDING.value:
                # A stage that never started takes the caller's current description.
                row.kind = kind or row.kind
                row.position = row.position if position is None else position
                row.config_hash = config_hash or row.config_hash
            if row is None:
                if position is None:
                    position = len(
                        session.scalars(select(StageRow.name).filter_by(run_id=self.id)).all()
                    )
                session.add(
                    StageRow(
                        run_id=self.id,
                        name=name,
                        kind=kind or name,
                        position=position,
                        status=Status.PENDING.value,
                        config_hash=config_hash,
                        metrics={},
                    )
                )
        return Stage(self, name)


class Stage:
    """Handle on one stage of a run: status transitions and the stage's artifact folder."""

    def __init__(self, run: Run, name: str) -> None:
        self.run = run
        self.name = name

    def __repr__(self) -> str:
        return f"Stage({self.run.id!r}, {self.name!r})"

    @property
    def record(self) -> StageRecord:
        """Fresh index record of this stage."""
        for record in self.run.stages():
            if record.name == self.name:
                return record
        raise StoreError(f"run `{self.run.id}` has no stage `{self.name}`")

    @property
    def status(self) -> Status:
        """Current status from the index."""
        return self.record.status

    @property
    def dir(self) -> Path:
        """This stage's artifact folder (created on demand)."""
        directory = self.run.artifacts_dir / self.name
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def start(self, config_hash: str | None = None) -> None:
        """Mark the stage ``running`` (keeps the first start time across resumes)."""
        record = self.record
        values: dict[str, Any] = {"status": Status.RUNNING.value, "error": None}
        if record.started_at is None:
            values["started_at"] = _now()
        if config_hash is not None:
            values["config_hash"] = config_hash
        self.run.store._update_stage(self.run.id, self.name, **values)
        self.run.log(f"stage `{self.name}` running")

    def finish(self, metrics: Mapping[str, MetricValue] | None = None) -> None:
        """Record ``metrics`` and mark the stage ``done``."""
        if metrics:
            self.log_metrics(metrics)
        self.run.store._update_stage(
            self.run.id, self.name, status=Status.DONE.value, finished_at=_now(), error=None
        )
        self.run.log(f"stage `{self.name}` done")

    def fail(self, error: str) -> None:
        """Mark the stage ``failed`` with a one-line reason; its finished items stay on disk."""
        self.run.store._update_stage(
            self.run.id, self.name, status=Status.FAILED.value, finished_at=_now(), error=error
        )
        self.run.log(f"stage `{self.name}` failed: {error}")

    def reset(self, config_hash: str | None = None) -> None:
        """Put the stage back to ``pending`` (artifacts are kept; callers delete them if needed)."""
        values: dict[str, Any] = {
            "status": Status.PENDING.value,
            "started_at": None,
            "finished_at": None,
            "error": None,
        }
        if config_hash is not None:
            values["config_hash"] = config_hash
        self.run.store._update_stage(self.run.id, self.name, **values)

    def set_config_hash(self, config_hash: str) -> None:
        """Record a new config hash without touching the status (a runner accepted the config)."""
        self.run.store._update_stage(self.run.id, self.name, config_hash=config_hash)

    def log_metrics(self, metrics: Mapping[str, MetricValue]) -> None:
        """Merge ``metrics`` into this stage's metrics."""
        self.run.log_metrics(metrics, stage=self.name)

    def path(self, relative: str | Path) -> Path:
        """Absolute path of ``relative`` in this stage's artifact folder."""
        return self.run.path(Path(self.name) / relative)

    def write_json(self, relative: str | Path, data: Any) -> Path:
        """Atomically write JSON into this stage's folder."""
        return self.run.write_json(Path(self.name) / relative, data)

    def read_json(self, relative: str | Path) -> Any:
        """Read JSON from this stage's folder."""
        return self.run.read_json(Path(self.name) / relative)

    def append_jsonl(self, relative: str | Path, record: Mapping[str, Any]) -> None:
        """Durably append one record to a JSONL file in this stage's folder."""
        self.run.append_jsonl(Path(self.name) / relative, record)

    def open_jsonl(self, relative: str | Path, *, id_key: str | None = None) -> JsonlWriter:
        """Resumable JSONL writer in this stage's folder (see :class:`JsonlWriter`)."""
        return self.run.open_jsonl(Path(self.name) / relative, id_key=id_key)

    def read_jsonl(self, relative: str | Path, *, missing_ok: bool = False) -> list[JsonRecord]:
        """Records of a JSONL file in this stage's folder."""
        return self.run.read_jsonl(Path(self.name) / relative, missing_ok=missing_ok)


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-only copy of ``config`` (paths and enums become strings) for saving and hashing."""
    plain = json.loads(json.dumps(dict(config), default=str))
    if not isinstance(plain, dict):
        raise StoreError("a run config must be a mapping")
    return plain


def _to_yaml(config: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)
