from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cai2.errors import DataError
from cai2.judges import heldout_split, load_pyrit_scorer_eval, objective_splits
from cai2.judges._pyrit import read_scorer_csv


def test_objective_set_has_the_395_human_labels() -> None:
    rows = load_pyrit_scorer_eval("objective")
    assert len(rows) == 395
    assert {row.label for row in rows} == {0.0, 1.0}
    assert all(row.objective and row.response for row in rows)
    assert rows[0].source.startswith("objective/") and ":" in rows[0].source


def test_heldout_split_is_fixed_disjoint_and_30_percent() -> None:
    rows = load_pyrit_scorer_eval("objective")
    training, heldout = heldout_split(rows, 0.3, seed=0)
    _, again_heldout = heldout_split(list(reversed(rows)), 0.3, seed=0)
    assert {r.key for r in heldout} == {r.key for r in again_heldout}
    assert not {r.key for r in training} & {r.key for r in heldout}
    assert len(training) + len(heldout) == len(rows)
    unique = len({r.key for r in rows})
    assert len({r.key for r in heldout}) == round(0.3 * unique)
    _, other = heldout_split(rows, 0.3, seed=1)
    assert {r.key for r in other} != {r.key for r in heldout}


def test_objective_splits_keep_heldout_out_of_training() -> None:
    splits = objective_splits(seed=0)
    heldout = {r.key for r in splits.heldout}
    calibration = {r.key for r in splits.calibration}
    assert heldout and calibration
    assert not heldout & {r.key for r in splits.training}
    assert not calibration & {r.key for r in splits.training}
    assert not heldout & calibration
    assert len(splits.extra) > 0  # PyRIT's harm set adds training replies


def test_missing_pyrit_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "pyrit" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(DataError, match=r"pip install --no-deps 'pyrit==1\.1\.0'"):
        load_pyrit_scorer_eval("objective")


def test_unknown_set_is_named() -> None:
    with pytest.raises(DataError, match="unknown scorer-eval set `nope`"):
        load_pyrit_scorer_eval("nope")  # type: ignore[arg-type]


def test_bad_score_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "# dataset_version=1.0\n"
        "objective,assistant_response,human_score\n"
        'a,"two\nlines",1\n'
        "b,fine,maybe\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"bad\.csv:5: `human_score` is 'maybe'"):
        read_scorer_csv(path)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("objective,reply,human_score\na,b,1\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"cols\.csv:1: header lacks the column\(s\) assistant_response"
    ):
        read_scorer_csv(path)
