from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from cai2.errors import DataError, ModelError
from cai2.judges import (
    EmbeddingHeadJudge,
    HiddenStateHeadJudge,
    JudgeItem,
    LabelledResponse,
    calibrate,
)


def _by_topic(
    rows: list[LabelledResponse],
) -> tuple[list[LabelledResponse], list[LabelledResponse]]:
    """Train on the first 8 topics, test on the 4 unseen ones."""
    topics = sorted({r.objective for r in rows})
    test_topics = set(topics[8:])
    return [r for r in rows if r.objective not in test_topics], [
        r for r in rows if r.objective in test_topics
    ]


def test_embedding_head_learns_a_separable_set(toy_set: list[LabelledResponse]) -> None:
    train, test = _by_topic(toy_set)
    judge = EmbeddingHeadJudge(parts=("response",))  # embeddings only, no refusal features
    judge.fit(train)
    report = calibrate(judge, test, dataset="toy:unseen-topics")
    assert report.n == 16
    assert report.accuracy >= 0.9
    assert report.auroc is not None and report.auroc >= 0.95
    assert judge.meta["n_train"] == 32 and len(judge.meta["training_data_sha256"]) == 64


def test_untrained_head_says_how_to_train() -> None:
    with pytest.raises(ModelError, match="cai2 judge train --judge embedding-head"):
        EmbeddingHeadJudge().verdict("q", "r")


def test_persistence_round_trip_without_pickle(
    toy_set: list[LabelledResponse], embedding_head_file: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(embedding_head_file) as archive:
        assert sorted(archive.namelist()) == sorted(
            f"{k}.npy" for k in ("mean", "scale", "coef", "intercept", "regularisation", "meta")
        )
    with np.load(embedding_head_file, allow_pickle=False) as data:
        assert data["meta"].dtype.kind == "U"  # a JSON string, not a pickled object
    trained = EmbeddingHeadJudge()
    trained.fit(toy_set)
    loaded = EmbeddingHeadJudge()
    loaded.load_head(embedding_head_file)
    items = [JudgeItem.of(r.objective, r.response) for r in toy_set[:6]]
    expected = [v.p_violation for v in trained.verdict_batch(items)]
    got = [v.p_violation for v in loaded.verdict_batch(items)]
    assert got == pytest.approx(expected, abs=1e-9)
    assert loaded.meta["training_data_sha256"] == trained.meta["training_data_sha256"]


def test_loading_checks_kind_and_features(embedding_head_file: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="trained with features"):
        EmbeddingHeadJudge(parts=("response",)).load_head(embedding_head_file)
    with pytest.raises(DataError, match="not a `hidden-head` head"):
        HiddenStateHeadJudge("hf:tiny").load_head(embedding_head_file)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a cai2 judge head"):
        EmbeddingHeadJudge().load_head(junk)
    with pytest.raises(DataError, match="no judge head at"):
        EmbeddingHeadJudge().load_head(tmp_path / "missing.npz")


def test_one_class_is_refused(toy_set: list[LabelledResponse]) -> None:
    with pytest.raises(DataError, match="each class"):
        EmbeddingHeadJudge(parts=("refusal",)).fit([r for r in toy_set if r.positive])


def test_hidden_state_head_trains_on_the_tiny_model(
    toy_set: list[LabelledResponse], tmp_path: Path
) -> None:
    judge = HiddenStateHeadJudge("hf:tiny", layer=-1, with_refusal_features=False)
    train, test = _by_topic(toy_set)
    judge.fit(train)
    verdicts = judge.verdict_batch([JudgeItem.of(r.objective, r.response) for r in test])
    assert len(verdicts) == len(test)
    assert all(v.p_violation is not None and 0.0 <= v.p_violation <= 1.0 for v in verdicts)
    path = judge.save(tmp_path / "hidden.npz")
    again = HiddenStateHeadJudge("hf:tiny", layer=-1, with_refusal_features=False)
    again.load_head(path)
    assert [v.p_violation for v in again.verdict_batch([JudgeItem.of("q", "r")])] == pytest.approx(
        [v.p_violation for v in judge.verdict_batch([JudgeItem.of("q", "r")])]
    )
