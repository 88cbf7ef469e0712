"""Crash safety of the store's file writers, with real processes killed mid-write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cai2.errors import DataError
from cai2.store import (
    JsonlWriter,
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
    relocated,
)


def test_atomic_write_keeps_old_file_when_writer_fails_midway(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    atomic_write_text(target, "old: 1\n")

    def chunks() -> Iterator[str]:
        yield "new: "
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write_text(target, chunks())
    assert target.read_text() == "old: 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # temp file cleaned up


def test_atomic_write_keeps_old_file_when_process_dies_before_rename(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"accuracy": 0.5})
    # The child writes the full new content, then dies exactly where the rename would happen.
    script = textwrap.dedent(
        f"""
        import os
        from cai2.store import atomic_write_json
        os.replace = lambda *args: os._exit(9)
        atomic_write_json({str(target)!r}, {{"accuracy": 0.9, "padding": "x" * 100000}})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == 9
    assert json.loads(target.read_text()) == {"accuracy": 0.5}
    leftovers = [p for p in tmp_path.iterdir() if p.name != "metrics.json"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".metrics.json.")


def test_atomic_write_json_refuses_unserialisable_value_without_touching_file(
    tmp_path: Path,
) -> None:
    target = tmp_path / "data.json"
    atomic_write_json(target, [1, 2])
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == [1, 2]


def test_reader_skips_torn_last_line_and_writer_repairs_it(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": 1}\n{"id": 2}\n{"id": 3, "resp')
    assert read_jsonl(path) == [{"id": 1}, {"id": 2}]
    with JsonlWriter(path, id_key="id") as writer:
        assert writer.done_ids == {1, 2}
        writer.append({"id": 3, "response": "again"})
    assert read_jsonl(path) == [{"id": 1}, {"id": 2}, {"id": 3, "response": "again"}]
    assert path.read_text().endswith('"again"}\n')


def test_complete_last_record_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}')
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b"]
    append_jsonl(path, {"id": "c"})
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b", "c"]


def test_corruption_before_the_last_line_is_an_error_with_line_number(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": 1}\nnot json\n{"id": 3}\n')
    with pytest.raises(DataError, match=r"out\.jsonl:2: invalid JSONL"):
        read_jsonl(path)
    path.write_text('{"id": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match=r":2: a JSONL record must be a JSON object"):
        read_jsonl(path)


def test_missing_file(tmp_path: Path) -> None:
    assert read_jsonl(tmp_path / "none.jsonl", missing_ok=True) == []
    with pytest.raises(DataError, match="file not found"):
        read_jsonl(tmp_path / "none.jsonl")


def test_killed_writer_keeps_every_finished_record(tmp_path: Path) -> None:
    path = tmp_path / "stream.jsonl"
    script = textwrap.dedent(
        f"""
        from cai2.store import JsonlWriter
        with JsonlWriter({str(path)!r}, id_key="id") as out:
            i = 0
            while True:
                out.append({{"id": i, "text": "y" * 5000}})
                i += 1
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_size > 40 * 5000:
                break
            time.sleep(0.01)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    records = read_jsonl(path)
    assert len(records) >= 40
    assert [r["id"] for r in records] == list(range(len(records)))
    with JsonlWriter(path, id_key="id") as writer:
        assert writer.done_ids == set(range(len(records)))
        writer.append({"id": len(records)})
    assert read_jsonl(path)[-1] == {"id": len(records)}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
records_strategy = st.lists(
    st.dictionaries(st.text(max_size=8), json_values, max_size=4), max_size=6
)


@settings(max_examples=40, deadline=None)
@given(records=records_strategy, cut=st.integers(min_value=0))
def test_round_trip_and_any_truncation_reads_a_prefix(
    tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, object]], cut: int
) -> None:
    path = tmp_path_factory.mktemp("jsonl") / "data.jsonl"
    with JsonlWriter(path, fsync=False) as writer:
        for record in records:
            writer.append(record)
    assert read_jsonl(path) == records
    # Simulate a crash at any byte: what is left reads as a prefix of what was written.
    data = path.read_bytes()
    path.write_bytes(data[: cut % (len(data) + 1)])
    survived = read_jsonl(path)
    assert survived == records[: len(survived)]
    with JsonlWriter(path, fsync=False) as writer:
        writer.append({"after": "crash"})
    assert read_jsonl(path) == [*survived, {"after": "crash"}]


def test_jsonl_objects_name_the_line_of_bad_data() -> None:
    from cai2.store._files import jsonl_objects, require_strings

    rows = list(jsonl_objects('{"a": "x"}\n\n{"a": "y"}\n', "data.jsonl"))
    assert rows == [(1, {"a": "x"}), (3, {"a": "y"})]  # blank lines skipped, numbers kept
    with pytest.raises(DataError, match=r"data\.jsonl:2: not valid JSON"):
        list(jsonl_objects('{"a": 1}\n{"a": \n', "data.jsonl"))
    with pytest.raises(DataError, match=r"data\.jsonl:1: expected a JSON object, got list"):
        list(jsonl_objects("[1, 2]\n", "data.jsonl"))
    require_strings({"a": "x", "b": "y"}, ("a", "b"), "data.jsonl:1")
    with pytest.raises(DataError, match=r"data\.jsonl:4 at `b`: expected a non-empty string"):
        require_strings({"a": "x", "b": "  "}, ("a", "b"), "data.jsonl:4")


def test_relocated_finds_a_recorded_path_inside_a_moved_folder(tmp_path: Path) -> None:
    old = tmp_path / "old" / "run-1" / "artifacts"
    new = tmp_path / "new" / "run-1" / "artifacts"
    (new / "sl" / "model").mkdir(parents=True)
    recorded = old / "sl" / "model"
    assert relocated(recorded, new) == new / "sl" / "model"
    assert relocated(str(recorded), new) == new / "sl" / "model"
    # Nothing there under the new folder, or no component to anchor on: the recorded path stays,
    # so an error still names it.
    assert relocated(old / "rl" / "model", new) == old / "rl" / "model"
    assert relocated(tmp_path / "elsewhere" / "model", new) == tmp_path / "elsewhere" / "model"
    # A path that still exists is used as it is, even when the anchor would match too.
    (old / "sl" / "model").mkdir(parents=True)
    assert relocated(recorded, new) == recorded
    # The last component named like the anchor counts.
    nested = tmp_path / "artifacts" / "x" / "artifacts" / "sl" / "model"
    assert relocated(nested, new) == new / "sl" / "model"
