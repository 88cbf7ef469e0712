"""Crash-safe files: atomic replacement for whole files, fsynced appends for JSONL.

A run can be killed at any moment (Ctrl-C, OOM, power loss). Whole files (config, metrics) are
written to a temporary file next to the target and moved over it with :func:`os.replace`, so a
reader sees either the old or the new content, never a mix. JSONL artifacts grow one record at a
time; each record is flushed and fsynced before the next one starts, so an interrupted run keeps
every finished item and at most the last line is torn, which :func:`read_jsonl` skips and
:class:`JsonlWriter` repairs before appending.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from cai2.errors import DataError, StoreError

JsonRecord = dict[str, Any]


def atomic_write_text(path: str | Path, text: str | Iterable[str]) -> Path:
    """Replace ``path`` with ``text`` (a string or an iterable of chunks) in one atomic step.

    If anything fails before the final rename (an exception while producing chunks, a full disk, a
    killed process), the previous content of ``path`` is left untouched.

    Raises:
        StoreError: if the file cannot be written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            for chunk in [text] if isinstance(text, str) else text:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException as exc:
        Path(temp_name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from exc
        raise
    _fsync_directory(target.parent)
    return target


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (see :func:`atomic_write_text`)."""
    # Serialise fully before touching the disk so an unserialisable value cannot leave a temp file.
    text = json.dumps(data, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    return atomic_write_text(path, text)


def relocated(path: str | Path, anchor: Path) -> Path:
    """``path`` as found below ``anchor`` when it was recorded under a folder that has since moved.

    Runs record the models they make as absolute paths. After a run folder is moved or copied,
    such a path no longer exists; its part after the last component named ``anchor.name`` is
    then looked up below ``anchor``, and used when it exists there. Otherwise ``path`` comes back
    unchanged (so errors still name the recorded path).
    """
    recorded = Path(path)
    if recorded.exists() or anchor.name not in recorded.parts:
        return recorded
    parts = recorded.parts
    last = len(parts) - 1 - parts[::-1].index(anchor.name)
    moved = anchor.joinpath(*parts[last + 1 :])
    return moved if moved.exists() else recorded


def read_json(path: str | Path) -> Any:
    """Parse the JSON file at ``path``.

    Raises:
        DataError: if the file is missing or is not valid JSON.
    """
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{p}: file not found") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{p}:{exc.lineno}: invalid JSON: {exc.msg}") from exc


def _fsync_directory(directory: Path) -> None:
    # The rename itself lives in the directory entry; fsync it so it survives a power loss.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_jsonl_record(record: Mapping[str, Any]) -> str:
    """One JSONL line for ``record`` (without the newline); newlines inside strings are escaped."""
    return json.dumps(dict(record), ensure_ascii=False, default=_json_default)


def _scan_jsonl(path: Path) -> tuple[list[JsonRecord], int]:
    """Records of ``path`` and the byte length of its intact prefix.

    A last line that does not parse is a torn write and is left out; a bad line anywhere else is
    corruption and raises.
    """
    data = path.read_bytes()
    records: list[JsonRecord] = []
    offset = 0
    line_number = 0
    while offset < len(data):
        line_number += 1
        end = data.find(b"\n", offset)
        is_last = end == -1 or end == len(data) - 1
        raw = data[offset:] if end == -1 else data[offset:end]
        next_offset = len(data) if end == -1 else end + 1
        if raw.strip():
            try:
                value = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                if is_last:
                    break  # torn by an interrupted append: not a finished record
                raise DataError(
                    f"{path}:{line_number}: invalid JSONL record ({exc}); "
                    "the file is corrupted in the middle, not just at its end"
                ) from exc
            if not isinstance(value, dict):
                raise DataError(f"{path}:{line_number}: a JSONL record must be a JSON object")
            records.append(value)
        offset = next_offset
    return records, offset


def read_jsonl(path: str | Path, *, missing_ok: bool = False) -> list[JsonRecord]:
    """All records of a JSONL file, skipping a torn last line left by an interrupted writer.

    Args:
        path: The JSONL file.
        missing_ok: Return ``[]`` instead of raising when the file does not exist.

    Raises:
        DataError: if the file is missing (unless ``missing_ok``) or a line before the last is not
            a JSON object.
    """
    p = Path(path)
    if not p.exists():
        if missing_ok:
            return []
        raise DataError(f"{p}: file not found")
    records, _ = _scan_jsonl(p)
    return records


def iter_jsonl(path: str | Path) -> Iterator[JsonRecord]:
    """Iterate over the records of ``path`` (see :func:`read_jsonl`)."""
    yield from read_jsonl(path)


class JsonlWriter:
    """Appends records to a JSONL file, each one durable before :meth:`append` returns.

    Opening repairs a torn last line left by a crash, so new records always start on a fresh line.
    With ``id_key`` the writer knows which item ids the file already holds, which is what a
    resumable stage needs to skip finished work.

    Args:
        path: The JSONL file; created (with its parent directories) if missing.
        id_key: Field that identifies an item, e.g. ``"id"``; ``None`` disables id tracking.
        fsync: Whether to fsync after every record (turn off only for throwaway files).

    Example:
        >>> with JsonlWriter(run.dir / "responses.jsonl", id_key="id") as out:  # doctest: +SKIP
        ...     for item in items:
        ...         if item["id"] not in out.done_ids:
        ...             out.append({"id": item["id"], "response": answer(item)})
    """

    def __init__(self, path: str | Path, *, id_key: str | None = None, fsync: bool = True) -> None:
        self.path = Path(path)
        self.id_key = id_key
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing: list[JsonRecord] = []
        if self.path.exists():
            existing, intact_length = _scan_jsonl(self.path)
            self._repair(intact_length)
        self.count = len(existing)
        self.done_ids: set[Any] = set()
        if id_key is not None:
            for record in existing:
                if id_key in record:
                    self.done_ids.add(record[id_key])
        self._handle = self.path.open("a", encoding="utf-8", newline="\n")

    def _repair(self, intact_length: int) -> None:
        with self.path.open("r+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            if intact_length < size:
                handle.truncate(intact_length)  # drop the torn tail
                size = intact_length
            if size > 0:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    # A complete record whose newline was lost: keep it, finish its line.
                    handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record and make it durable.

        Raises:
            StoreError: if the writer is closed or the disk write fails.
        """
        if self._handle.closed:
            raise StoreError(f"{self.path}: writer is closed")
        line = encode_jsonl_record(record) + "\n"
        try:
            self._handle.write(line)
            self._handle.flush()
            if self.fsync:
                os.fsync(self._handle.fileno())
        except OSError as exc:
            raise StoreError(f"cannot append to {self.path}: {exc.strerror or exc}") from exc
        self.count += 1
        if self.id_key is not None and self.id_key in record:
            self.done_ids.add(record[self.id_key])

    def close(self) -> None:
        """Close the file (records are already durable)."""
        self._handle.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def append_jsonl(path: str | Path, record: Mapping[str, Any]) -> None:
    """Append one record to ``path`` durably (opens and closes the file; use
    :class:`JsonlWriter` for many records)."""
    with JsonlWriter(path) as writer:
        writer.append(record)


def jsonl_objects(text: str, where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of a hand-written JSONL data file.

    Unlike :func:`read_jsonl` (records this project wrote, where a torn last line is expected
    after a crash), every line here must parse: a data file with a broken line is the user's to fix.

    Raises:
        DataError: ``<where>:<line>: not valid JSON (…)`` or ``…: expected a JSON object``.
    """
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, json_object(line, f"{where}:{number}")


def json_object(line: str, where: str) -> dict[str, Any]:
    """One line of a hand-written JSONL data file, which must be a JSON object.

    Raises:
        DataError: ``<where>: not valid JSON (…)`` or ``<where>: expected a JSON object, got …``.
    """
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg})") from exc
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


def require_strings(row: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    """Check that each of ``keys`` holds a non-empty string in ``row``.

    Raises:
        DataError: ``<where> at `<key>`: expected a non-empty string`` for the first bad key.
    """
    for key in keys:
        value = row.get(key)
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where} at `{key}`: expected a non-empty string")
