"""Human-labelled judge-calibration sets shipped in the installed ``pyrit`` package.

PyRIT (``datasets/scorer_evals/``) ships CSV files of model replies that people labelled. cai2 reads
them from the installed package at run time (the package's code is never imported and the text is
never copied into this repository):

- ``objective``: 395 replies to harmful objectives, ``human_score`` 1 when the reply achieves the
  objective (a harmful compliance), 0 otherwise. This is the calibration anchor for judges.
- ``refusal``: replies labelled 1 when they refuse (``refusal_scorer/refusal*.csv``).
- ``harm``: replies to harmful prompts rated 0–1 for harm by one or more people (the mean is the
  label; ``harm/*.csv``).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cai2.errors import DataError
from cai2.packages import package_dir

ScorerEvalName = Literal["objective", "refusal", "harm"]
SCORER_EVALS: dict[str, str] = {
    "objective": "objective",
    "refusal": "refusal_scorer",
    "harm": "harm",
}
_SKIP_FILES = {"mini_hate_speech.csv"}  # a subset of hate_speech_multi_score.csv


@dataclass(frozen=True)
class LabelledResponse:
    """One human-labelled reply.

    Attributes:
        objective: The request the reply answers.
        response: The reply.
        label: Human score in [0, 1] (the mean when several people rated it).
        category: Harm category, or the file stem when the file has none.
        source: ``file:line`` of the row, for error messages and audits.
    """

    objective: str
    response: str
    label: float
    category: str
    source: str

    @property
    def positive(self) -> bool:
        """The label read as yes/no (score ≥ 0.5)."""
        return self.label >= 0.5

    @property
    def key(self) -> str:
        """Stable id of the reply text, used for splitting and de-duplication."""
        return hashlib.sha256(self.response.strip().encode("utf-8")).hexdigest()


def scorer_evals_dir() -> Path:
    """``datasets/scorer_evals`` inside the installed pyrit package.

    Raises:
        DataError: when pyrit is not installed (with the install command) or has no such folder.
    """
    path = package_dir("pyrit") / "datasets" / "scorer_evals"
    if not path.is_dir():
        raise DataError(
            f"the installed pyrit package has no `datasets/scorer_evals` folder at {path}; "
            "install the version cai2 expects: `pip install --no-deps 'pyrit==1.1.0'`"
        )
    return path


def load_pyrit_scorer_eval(
    name: ScorerEvalName = "objective", root: Path | None = None
) -> list[LabelledResponse]:
    """Load one of PyRIT's human-labelled scorer-evaluation sets, in a stable order.

    Args:
        name: ``objective``, ``refusal`` or ``harm`` (see the module docstring).
        root: The ``scorer_evals`` folder; defaults to the installed pyrit package's.

    Raises:
        DataError: when pyrit is missing, a file is malformed (file and line in the message) or the
            set is empty.
    """
    if name not in SCORER_EVALS:
        raise DataError(f"unknown scorer-eval set `{name}`; known: {', '.join(SCORER_EVALS)}")
    folder = (root or scorer_evals_dir()) / SCORER_EVALS[name]
    files = sorted(p for p in folder.glob("*.csv") if p.name not in _SKIP_FILES)
    if not files:
        raise DataError(
            f"no CSV files in {folder}; reinstall pyrit (`pip install --no-deps pyrit`)"
        )
    rows: list[LabelledResponse] = []
    for path in files:
        rows += read_scorer_csv(path)
    if not rows:
        raise DataError(f"the scorer-eval set `{name}` in {folder} has no labelled rows")
    return rows


def read_scorer_csv(path: Path) -> list[LabelledResponse]:
    """Read one PyRIT scorer-eval CSV (``#`` comment lines, then a header row).

    Raises:
        DataError: for a missing column or a score that is not a number in [0, 1].
    """
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    skipped = 0
    while skipped < len(lines) and lines[skipped].lstrip().startswith("#"):
        skipped += 1
    reader = csv.DictReader(io.StringIO("".join(lines[skipped:])))
    fields = reader.fieldnames or []
    score_columns = [f for f in fields if f and f.startswith("human_score")]
    missing = [c for c in ("objective", "assistant_response") if c not in fields]
    if missing or not score_columns:
        need = ", ".join(missing + ([] if score_columns else ["human_score"]))
        raise DataError(
            f"{path}:{skipped + 1}: header lacks the column(s) {need}; "
            "expected objective, assistant_response and human_score[_N]"
        )
    rows = []
    start_line = skipped + 2
    for record in reader:
        line = start_line
        start_line = skipped + reader.line_num + 1
        scores = []
        for column in score_columns:
            raw = (record.get(column) or "").strip()
            if not raw:
                continue
            try:
                value = float(raw)
            except ValueError:
                raise DataError(
                    f"{path}:{line}: `{column}` is {raw!r}, not a number; scores must be in [0, 1]"
                ) from None
            if not 0.0 <= value <= 1.0:
                raise DataError(f"{path}:{line}: `{column}` is {value}, outside [0, 1]")
            scores.append(value)
        response = record.get("assistant_response") or ""
        if not scores or not response.strip():
            continue
        rows.append(
            LabelledResponse(
                objective=(record.get("objective") or "").strip(),
                response=response,
                label=sum(scores) / len(scores),
                category=(record.get("harm_category") or path.stem).strip() or path.stem,
                source=f"{path.parent.name}/{path.name}:{line}",
            )
        )
    return rows


def heldout_split(
    rows: Sequence[LabelledResponse], heldout_fraction: float = 0.3, seed: int = 0
) -> tuple[list[LabelledResponse], list[LabelledResponse]]:
    """Split into (training, held-out) by a seeded hash of each reply's text.

    The split is fixed by the seed and the texts alone (not by file order), so adding files never
    moves an existing reply across it, and identical replies always fall on the same side. The
    held-out part is never used for training, model selection or threshold / temperature fitting.
    """
    if not 0.0 < heldout_fraction < 1.0:
        raise DataError(f"`heldout_fraction` must be in (0, 1); got {heldout_fraction}")
    keys = sorted(
        {row.key for row in rows}, key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).digest()
    )
    n_heldout = round(heldout_fraction * len(keys))
    heldout_keys = set(keys[:n_heldout])
    training = [row for row in rows if row.key not in heldout_keys]
    heldout = [row for row in rows if row.key in heldout_keys]
    return training, heldout


def training_pool(
    heldout: Sequence[LabelledResponse], extra_sets: Sequence[ScorerEvalName] = ("harm",)
) -> list[LabelledResponse]:
    """Extra labelled replies for TRAINING only, with every reply in ``heldout`` removed.

    ``harm`` rows (rated harm, mean score ≥ 0.5 = harmful) read as "objective achieved" well enough
    to add training signal; the ``refusal`` set is not used because not refusing a benign request
    is not a violation.
    """
    blocked = {row.key for row in heldout}
    pool: list[LabelledResponse] = []
    for name in extra_sets:
        pool += [row for row in load_pyrit_scorer_eval(name) if row.key not in blocked]
    return pool
