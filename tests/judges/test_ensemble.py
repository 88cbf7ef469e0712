from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cai2.errors import DataError
from cai2.judges import EmbeddingHeadJudge, EnsembleJudge, LabelledResponse, RefusalJudge, calibrate
from cai2.judges._ensemble import fit_temperature


def test_temperature_is_recovered_from_synthetic_scores() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 4, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-z / 2.0))).astype(int)
    assert fit_temperature(z, y) == pytest.approx(2.0, rel=0.15)


def test_stacked_ensemble_calibrates_and_round_trips(
    toy_set: list[LabelledResponse], embedding_head_file: Path, tmp_path: Path
) -> None:
    head = EmbeddingHeadJudge(name="embedding-head")
    head.load_head(embedding_head_file)
    members = [RefusalJudge(), head]
    ensemble = EnsembleJudge(members, combine="stack")
    ensemble.fit(toy_set)
    report = calibrate(ensemble, toy_set)
    assert report.accuracy >= 0.95
    verdict = ensemble.verdict(toy_set[0].objective, toy_set[0].response)
    assert "refusal=" in verdict.rationale and "embedding-head=" in verdict.rationale
    path = ensemble.save(tmp_path / "ensemble.json")
    loaded = EnsembleJudge.load(path, members)
    assert loaded.verdict(toy_set[0].objective, toy_set[0].response) == verdict
    with pytest.raises(DataError, match="fitted for members"):
        EnsembleJudge.load(path, [RefusalJudge()])


@pytest.mark.parametrize("calibration", ["platt", "temperature", "none"])
def test_calibrated_single_judge(toy_set: list[LabelledResponse], calibration: str) -> None:
    judge = EnsembleJudge([RefusalJudge()], combine="mean", calibration=calibration)  # type: ignore[arg-type]
    judge.fit(toy_set)
    report = calibrate(judge, toy_set)
    raw = calibrate(RefusalJudge(), toy_set)
    assert report.accuracy == pytest.approx(raw.accuracy)  # calibration keeps the ranking
    if calibration != "none":
        assert report.brier <= raw.brier + 1e-9


def test_abstaining_members() -> None:
    class Abstains(RefusalJudge):
        def verdict_batch(self, items, principles=()):  # type: ignore[no-untyped-def]
            return [
                v.model_copy(update={"p_violation": None}) for v in super().verdict_batch(items)
            ]

    only = EnsembleJudge([Abstains(name="abstains")], combine="mean", calibration="none")
    assert only.verdict("q", "r").p_violation is None
    mixed = EnsembleJudge(
        [Abstains(name="abstains"), RefusalJudge()], combine="mean", calibration="none"
    )
    assert mixed.verdict("q", "I can't help with that.").p_violation == pytest.approx(0.05)
