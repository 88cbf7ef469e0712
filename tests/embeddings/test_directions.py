from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cai2.embeddings import (
    ConstitutionalEmbeddings,
    auroc,
    evaluate_embeddings,
    load_examples,
    reply_activations,
    split_examples,
    summary_auroc,
    train_embeddings,
)
from cai2.embeddings._data import PrincipleExample
from cai2.errors import ConfigError, DataError, ModelError
from cai2.models import HFChatModel, load_model, tiny_model_dir

from .conftest import PRINCIPLES


def test_training_finds_a_direction_per_principle(
    tiny: HFChatModel, trained: ConstitutionalEmbeddings
) -> None:
    assert trained.principle_ids == list(PRINCIPLES)
    assert 1 <= trained.layer <= tiny.num_layers
    assert set(trained.layer_val_auroc) == {1, 2}
    assert trained.layer_val_auroc[trained.layer] == max(trained.layer_val_auroc.values())
    assert trained.constitution == "cai-2.0" and trained.constitution_version == "2.0"
    assert len(trained.constitution_hash) == 64
    train = [e for e in split_examples(load_examples(principles=PRINCIPLES))["train"]]
    x = reply_activations(tiny, [(e.conversation, e.response) for e in train], [trained.layer])[0]
    for pid, direction in trained.principles.items():
        for vector in direction.directions.values():
            assert vector.shape == (tiny.hidden_size,)
            assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
        assert direction.steer_scale > 0
        rows = [i for i, e in enumerate(train) if e.principle == pid]
        labels = [train[i].violates for i in rows]
        # Both directions separate the examples they were fitted on (chance is 0.5); the probe,
        # with a weight per dimension, nearly perfectly.
        for method, floor in (("probe", 0.9), ("mean_diff", 0.7)):
            train_auroc = auroc(labels, direction.score(x[rows], method))
            assert train_auroc is not None and train_auroc > floor, (pid, method)
        p = direction.probability(x[rows], "probe")
        assert np.all((p >= 0) & (p <= 1))


def test_heldout_auroc_is_measured_per_principle(
    tiny: HFChatModel, trained: ConstitutionalEmbeddings
) -> None:
    test = split_examples(load_examples(principles=PRINCIPLES))["test"]
    results = evaluate_embeddings(trained, tiny, test)
    assert [r.principle for r in results] == list(PRINCIPLES)
    for r in results:
        n = [e for e in test if e.principle == r.principle]
        assert r.n_compliant + r.n_violating == len(n)
        assert r.auroc is not None and 0.0 <= r.auroc <= 1.0
        assert r.brier is not None and 0.0 <= r.brier <= 1.0
    # Crime replies differ in wording ("I can't help" vs "Set up a fake page"), which even a
    # random-weight model's activations separate on held-out prompts.
    crime = next(r for r in results if r.principle == "harmless.no_crime_facilitation")
    assert crime.auroc is not None and crime.auroc >= 0.9
    lowest, mean = summary_auroc(results)
    assert lowest is not None and mean is not None and lowest <= mean


def test_save_load_round_trip(
    tiny: HFChatModel, trained: ConstitutionalEmbeddings, tmp_path: Path
) -> None:
    path = trained.save(tmp_path / "dirs")
    assert path.suffix == ".npz" and path.with_suffix(".json").is_file()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["model_spec"] == "hf:tiny" and meta["layer"] == trained.layer
    assert [p["principle"] for p in meta["principles"]] == list(PRINCIPLES)
    loaded = ConstitutionalEmbeddings.load(path, tiny)
    x = np.random.default_rng(0).normal(size=(5, tiny.hidden_size)).astype(np.float32)
    for pid in PRINCIPLES:
        np.testing.assert_allclose(
            loaded.probabilities(x)[pid], trained.probabilities(x)[pid], rtol=1e-5
        )
        assert loaded.principles[pid].steer_scale == pytest.approx(
            trained.principles[pid].steer_scale
        )


def test_loading_for_a_different_model_raises_model_error(
    trained: ConstitutionalEmbeddings, tmp_path: Path
) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    # A real model of another width: the tiny model's config and tokenizer at hidden size 32.
    directory = tmp_path / "narrow"
    shutil.copytree(tiny_model_dir(), directory)
    config = AutoConfig.from_pretrained(directory)
    config.hidden_size, config.intermediate_size, config.head_dim = 32, 64, 8
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    narrow = load_model(f"hf:{directory}")
    path = trained.save(tmp_path / "dirs.npz")
    with pytest.raises(ModelError, match=r"hidden size 64.*hidden size 32"):
        ConstitutionalEmbeddings.load(path, narrow)


def test_missing_or_corrupt_files_raise_data_error(
    trained: ConstitutionalEmbeddings, tmp_path: Path
) -> None:
    with pytest.raises(DataError, match="not found"):
        ConstitutionalEmbeddings.load(tmp_path / "none.npz")
    path = trained.save(tmp_path / "dirs.npz")
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["hidden_size"] = 65
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="shape"):
        ConstitutionalEmbeddings.load(path)


def test_principles_must_belong_to_the_constitution(tiny: HFChatModel) -> None:
    examples = [
        PrincipleExample(f"x{i}", "made.up", f"prompt number {i}", "reply", i % 2 == 0)
        for i in range(40)
    ]
    with pytest.raises(ConfigError, match=r"not in the constitution `cai-2\.0`"):
        train_embeddings(tiny, examples)
    with pytest.raises(ConfigError, match="out of range"):
        train_embeddings(tiny, load_examples(principles=PRINCIPLES[:1]), layers=[7])
