"""The run store: one directory per run plus a SQL index of runs and stages.

Every run gets ``<root>/<run id>/`` with its resolved config, crash-safe artifacts (atomic JSON,
fsynced JSONL appends), metrics and a log, and a row in a SQLAlchemy index (SQLite with WAL by
default; any SQLAlchemy URL such as PostgreSQL by argument or ``$CAI2_INDEX_URL``).
"""

from cai2.store._files import (
    JsonlWriter,
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    read_json,
    read_jsonl,
    relocated,
)
from cai2.store._store import (
    INDEX_URL_ENV,
    RUNS_DIR_ENV,
    Run,
    RunNotFoundError,
    RunRecord,
    RunStore,
    Stage,
    StageRecord,
    Status,
    check_run_id,
    config_hash,
)

__all__ = [
    "INDEX_URL_ENV",
    "RUNS_DIR_ENV",
    "JsonlWriter",
    "Run",
    "RunNotFoundError",
    "RunRecord",
    "RunStore",
    "Stage",
    "StageRecord",
    "Status",
    "append_jsonl",
    "atomic_write_json",
    "atomic_write_text",
    "check_run_id",
    "config_hash",
    "read_json",
    "read_jsonl",
    "relocated",
]
