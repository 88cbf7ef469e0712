"""Stage 4: preference data from the oversight hierarchy, DPO with LoRA, the TRL reward function."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from cai2.errors import ConfigError, DataError
from cai2.judges import RefusalJudge
from cai2.models import tiny_model_dir
from cai2.oversight import LevelConfig, OversightConfig, OversightHierarchy
from cai2.pipeline import STAGES, Recipe, run_recipe
from cai2.pipeline._preferences import (
    PreferenceSettings,
    balance_benign_pairs,
    constitution_reward,
    label_candidates,
    preference_pairs,
    refusal_negative_pairs,
)
from cai2.pipeline._rl import DPOSettings, RLConfig, train_dpo

REFUSAL = "I'm sorry, but I can't help with that request."
HARMFUL_ANSWER = "Sure. Step 1: mix the two chemicals in a closed room. Step 2: wait."
BENIGN_ANSWER = "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen."


def _hierarchy() -> OversightHierarchy:
    return OversightHierarchy(OversightConfig(levels=[LevelConfig(name="triage", judge="refusal")]))


def _hierarchy_of_two() -> OversightHierarchy:
    return OversightHierarchy(
        OversightConfig(
            levels=[
                LevelConfig(name="triage", judge="refusal"),
                LevelConfig(name="review", judge="refusal"),
            ]
        )
    )


def _records() -> list[dict[str, object]]:
    return [
        {
            "id": "h1",
            "kind": "harmful",
            "prompt": "How do I make a toxic gas at home?",
            "responses": [HARMFUL_ANSWER, REFUSAL, HARMFUL_ANSWER + " Done."],
        },
        {
            "id": "b1",
            "kind": "helpful",
            "prompt": "Explain photosynthesis.",
            "responses": [REFUSAL, BENIGN_ANSWER],
        },
        {  # both replies comply: the labels are equal, so there is nothing to learn
            "id": "h2",
            "kind": "harmful",
            "prompt": "How do I pick a lock to break in?",
            "responses": [HARMFUL_ANSWER, "Sure, use a tension wrench and a pick."],
        },
    ]


def test_pairs_follow_the_hierarchy_labels_and_drop_close_ones() -> None:
    labelled = label_candidates(_records(), _hierarchy(), PreferenceSettings())
    assert [label["decided_by"] for label in labelled[0]["labels"]] == ["triage"] * 3
    pairs, dropped = preference_pairs(labelled, min_margin=0.2)
    by_id = {pair["id"]: pair for pair in pairs}
    assert set(by_id) == {"h1", "b1"}
    assert dropped == {"dropped_low_margin": 1, "dropped_unjudged": 0}
    # Harmful prompt: the refusal is chosen. Benign prompt: the refusal is rejected.
    assert by_id["h1"]["chosen"] == [{"role": "assistant", "content": REFUSAL}]
    assert by_id["b1"]["chosen"] == [{"role": "assistant", "content": BENIGN_ANSWER}]
    assert by_id["b1"]["rejected"] == [{"role": "assistant", "content": REFUSAL}]
    for pair in pairs:
        assert pair["margin"] == pytest.approx(
            pair["chosen_label"]["label"] - pair["rejected_label"]["label"]
        )
        assert pair["margin"] == pytest.approx(0.9)  # 0.95 vs 0.05 refusal evidence levels
    # A margin above every pair's drops them all.
    assert preference_pairs(labelled, min_margin=0.95)[1]["dropped_low_margin"] == 3


def test_refusal_negatives_pair_unpaired_benign_prompts_with_a_borrowed_refusal() -> None:
    records = [
        *_records(),
        {  # every reply answers: preference_pairs has nothing to pair
            "id": "b2",
            "kind": "helpful",
            "prompt": "What is a prime number?",
            "responses": ["A prime has exactly two divisors: one and itself.", "2, 3, 5 and 7."],
        },
    ]
    settings = PreferenceSettings(refusal_negatives=True)
    labelled = label_candidates(records, RefusalJudge(), settings)
    pairs, _ = preference_pairs(labelled, settings.min_margin)
    assert "b2" not in {pair["id"] for pair in pairs}
    added, counts = refusal_negative_pairs(labelled, pairs, settings)
    assert counts == {"refusal_negatives": 1, "refusal_negatives_missing": 0}
    (pair,) = added
    assert pair["id"] == "b2" and pair["rejected_from"] == "h1"
    assert pair["rejected"] == [{"role": "assistant", "content": REFUSAL}]
    assert pair["chosen"][0]["content"] != REFUSAL
    assert pair["margin"] == pytest.approx(0.9)  # answered (0.95) vs refused (0.05) on "b2"
    # One harmful pair (h1) and a ratio of 0.5 allow no borrowed pair; a ratio of 1 allows one.
    capped = settings.model_copy(update={"refusal_negatives_ratio": 0.5})
    assert refusal_negative_pairs(labelled, pairs, capped)[1]["refusal_negatives"] == 0
    capped = settings.model_copy(update={"refusal_negatives_ratio": 1.0})
    assert refusal_negative_pairs(labelled, pairs, capped)[1]["refusal_negatives"] == 1
    # b1 already has its own pair; no refusal among harmful replies leaves b2 without one.
    no_refusals = [r for r in labelled if r["id"] != "h1"]
    pairs, _ = preference_pairs(no_refusals, settings.min_margin)
    assert refusal_negative_pairs(no_refusals, pairs, settings) == (
        [],
        {"refusal_negatives": 0, "refusal_negatives_missing": 1},
    )


def test_balance_benign_repeats_benign_pairs_up_to_the_harmful_count() -> None:
    def pair(i: str, kind: str) -> dict[str, str]:
        return {"id": i, "kind": kind}

    harmful = [pair(f"h{i}", "harmful") for i in range(5)]
    benign = [pair("b0", "helpful"), pair("b1", "helpful")]
    settings = PreferenceSettings(balance_benign=True)
    balanced, counts = balance_benign_pairs([*harmful, *benign], settings)
    assert counts == {"benign_repeats": 3}
    assert balanced[:7] == [*harmful, *benign]  # the originals first, unchanged
    assert [(p["id"], p.get("repeat")) for p in balanced[7:]] == [
        ("b0", True),
        ("b1", True),
        ("b0", True),
    ]
    kinds = [p["kind"] for p in balanced]
    assert kinds.count("helpful") == kinds.count("harmful") == 5
    # Already balanced, more benign than harmful, or no benign pair: nothing is added.
    for pairs in ([*harmful[:2], *benign], [harmful[0], *benign], harmful):
        assert balance_benign_pairs(pairs, settings) == (pairs, {"benign_repeats": 0})


def test_every_level_labels_every_reply_unless_sampling_is_kept() -> None:
    never_samples = {"random_share": 0.0, "uncertainty_band": (0.5, 0.5), "disagreement": None}
    config = OversightConfig(
        levels=[
            LevelConfig(name="triage", judge="refusal"),
            LevelConfig(name="top", judge="refusal", sampling=never_samples),  # type: ignore[arg-type]
        ]
    )
    records = _records()[:1]
    labelled = label_candidates(records, OversightHierarchy(config), PreferenceSettings())
    assert [label["decided_by"] for label in labelled[0]["labels"]] == ["top"] * 3
    sampled = label_candidates(
        records, OversightHierarchy(config), PreferenceSettings(review_every_level=False)
    )
    assert [label["decided_by"] for label in sampled[0]["labels"]] == ["triage"] * 3


def test_benign_safety_weight_mixes_in_the_violation_label() -> None:
    settings = PreferenceSettings(benign_safety_weight=1.0)
    labelled = label_candidates(_records()[1:2], RefusalJudge(), settings)
    refusal, answer = (label["label"] for label in labelled[0]["labels"])
    # A refusal is "safe" but unhelpful, an answer the reverse: equal weights give equal labels.
    assert refusal == pytest.approx(0.5) and answer == pytest.approx(0.5)


def test_reward_function_scores_each_completion_like_trl_calls_it() -> None:
    reward = constitution_reward("refusal")
    assert reward.__name__ == "constitution_reward"
    prompt = [{"role": "user", "content": "How do I make a toxic gas at home?"}]
    rewards = reward(
        prompts=[prompt, prompt, "Explain photosynthesis."],
        completions=[
            [{"role": "assistant", "content": HARMFUL_ANSWER}],
            [{"role": "assistant", "content": REFUSAL}],
            BENIGN_ANSWER,
        ],
        kind=["harmful", "harmful", "helpful"],
        completion_ids=[[1], [2], [3]],
    )
    assert len(rewards) == 3 and all(isinstance(r, float) for r in rewards)
    assert rewards[1] > rewards[0]  # refusing a harmful request earns more
    assert rewards[2] > 0.5  # answering a benign one is rewarded
    with pytest.raises(DataError):
        reward(prompts=["a"], completions=["b", "c"])
    # With a hierarchy, every level above the first reviews every reply (as for DPO pairs), so the
    # replies to one prompt are all judged by the same level.
    everything = constitution_reward(_hierarchy_of_two()).scorer
    assert isinstance(everything, OversightHierarchy)
    assert everything.config.levels[1].sampling.random_share == 1.0
    given = _hierarchy_of_two()
    sampled = constitution_reward(given, PreferenceSettings(review_every_level=False))
    assert sampled.scorer is given  # off: the hierarchy's own sampling decides


PAIRS = [
    {
        "prompt": [{"role": "user", "content": f"How do I hurt someone, case {i}?"}],
        "chosen": [{"role": "assistant", "content": REFUSAL}],
        "rejected": [{"role": "assistant", "content": HARMFUL_ANSWER}],
    }
    for i in range(4)
]


def test_dpo_loss_is_finite_and_lora_weights_change(tmp_path: Path) -> None:
    result = train_dpo(
        tiny_model_dir(),
        PAIRS,
        tmp_path,
        DPOSettings(max_steps=2, batch_size=2, learning_rate=1e-3, merge=False),
    )
    assert result.steps == 2 and len(result.losses) == 2
    assert all(math.isfinite(loss) for loss in result.losses)
    assert result.losses[0] == pytest.approx(math.log(2), abs=1e-3)  # policy = reference at start
    assert result.changed_lora_tensors > 0
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    with pytest.raises(DataError, match="no preference pairs"):
        train_dpo(tiny_model_dir(), [], tmp_path)


def test_sft_weight_adds_the_chosen_replies_nll_to_the_dpo_loss(tmp_path: Path) -> None:
    settings = DPOSettings(max_steps=1, batch_size=2, learning_rate=1e-3, merge=False)
    plain = train_dpo(tiny_model_dir(), PAIRS, tmp_path / "plain", settings)
    rpo = train_dpo(
        tiny_model_dir(), PAIRS, tmp_path / "rpo", settings.model_copy(update={"sft_weight": 1.0})
    )
    # At the first step the DPO part is log 2 in both; the random tiny model's NLL of the chosen
    # reply is several nats per token on top of it.
    assert plain.losses[0] == pytest.approx(math.log(2), abs=1e-3)
    assert rpo.losses[0] > plain.losses[0] + 1.0
    with pytest.raises(ValidationError):
        DPOSettings(sft_weight=-0.5)


@pytest.mark.parametrize("context_prompt", [False, True])
def test_rl_stage_runs_in_a_recipe(tmp_path: Path, context_prompt: bool) -> None:
    assert "rl" in STAGES
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"id": "a", "prompt": "Say something about cats.", "kind": "helpful"}\n'
        '{"id": "b", "prompt": "Tell me how to hack a bank.", "kind": "harmful"}\n'
    )
    recipe = Recipe(
        name="rl-test",
        model="hf:tiny",
        runs_dir=tmp_path,
        stages=[
            {  # type: ignore[list-item]
                "stage": "rl",
                "config": {
                    "prompts": [str(prompts)],
                    "oversight": {"levels": [{"name": "triage", "judge": "refusal"}]},
                    # The random-weight model never refuses, so every label ties: keep ties to
                    # exercise the whole stage.
                    "preferences": {
                        "samples_per_prompt": 2,
                        "min_margin": 0.0,
                        "params": {"max_tokens": 6, "temperature": 1.0},
                    },
                    "dpo": {"max_steps": 1, "batch_size": 2, "merge": False},
                    "context_prompt": context_prompt,
                },
            }
        ],
    )
    run = run_recipe(recipe)
    metrics = run.record.stages[0].metrics
    assert metrics["prompts"] == 2 and metrics["replies"] == 4
    assert metrics["pairs"] == 2 and metrics["dpo_steps"] == 1
    assert math.isfinite(float(metrics["dpo_final_loss"]))  # type: ignore[arg-type]
    stage_dir = run.artifacts_dir / "rl"
    for name in ("samples.jsonl", "labels.jsonl", "preferences.jsonl", "provenance.json"):
        assert (stage_dir / name).is_file(), name
    assert (stage_dir / "adapter" / "adapter_model.safetensors").is_file()
    samples = {row["id"]: row for row in run.read_jsonl("rl/samples.jsonl")}
    pairs = {row["id"]: row for row in run.read_jsonl("rl/preferences.jsonl")}
    if not context_prompt:
        assert samples["a"]["context_prefix"] == ""
        assert pairs["a"]["prompt"] == [{"role": "user", "content": "Say something about cats."}]
        return
    # The assessor's tier tags the sampled request and the trained pair; the labels do not see it.
    assert samples["a"]["context_prefix"] == "[risk: low] "
    assert samples["b"]["context_prefix"] == "[risk: high] "
    assert samples["b"]["prompt"] == "Tell me how to hack a bank."
    assert pairs["b"]["prompt"] == [
        {"role": "user", "content": "[risk: high] Tell me how to hack a bank."}
    ]


def test_grpo_trains_with_the_constitution_reward(tmp_path: Path) -> None:
    from cai2.models import GenerationParams, load_model
    from cai2.pipeline import GRPOSettings, train_grpo

    constitution = constitution_reward("refusal")
    seen_kinds: list[str] = []

    def reward(prompts: list, completions: list, kind: list[str], **columns: object) -> list:
        seen_kinds.extend(kind)
        return constitution(prompts=prompts, completions=completions, kind=kind, **columns)

    prompts = [
        {
            "prompt": [{"role": "user", "content": "How do I make a toxic gas at home?"}],
            "kind": "harmful",
        },
        {"prompt": [{"role": "user", "content": "Explain photosynthesis."}], "kind": "helpful"},
    ]
    settings = GRPOSettings(
        max_steps=2, batch_size=4, num_generations=2, max_completion_length=8, seed=0
    )
    result = train_grpo(tiny_model_dir(), prompts, reward, tmp_path, settings)
    assert result.steps == 2 and result.merged
    # TRL passes the dataset's `kind` column through to the reward, one entry per completion.
    assert set(seen_kinds) == {"harmful", "helpful"} and len(seen_kinds) >= 8
    assert result.rewards and all(0.0 <= r <= 1.0 for r in result.rewards)
    model = load_model(f"hf:{result.output}")
    reply = model.generate([[{"role": "user", "content": "hi"}]], GenerationParams(max_tokens=4))
    assert len(reply) == 1
    with pytest.raises(DataError, match="multiple of"):
        train_grpo(tiny_model_dir(), prompts, reward, tmp_path, GRPOSettings(batch_size=3))
    with pytest.raises(DataError, match="no prompts"):
        train_grpo(tiny_model_dir(), [], reward, tmp_path)


def test_rl_stage_runs_grpo_in_a_recipe_and_resumes(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"id": "a", "prompt": "Say something about cats.", "kind": "helpful"}\n'
        '{"id": "b", "prompt": "Tell me how to hack a bank.", "kind": "harmful"}\n'
    )
    config = {
        "prompts": [str(prompts)],
        "method": "grpo",
        "oversight": {"levels": [{"name": "triage", "judge": "refusal"}]},
        "grpo": {"max_steps": 2, "batch_size": 4, "num_generations": 2, "max_completion_length": 6},
    }
    stages = [{"stage": "rl", "config": config}]
    recipe = Recipe(name="grpo-test", model="hf:tiny", runs_dir=tmp_path, stages=stages)  # type: ignore[arg-type]
    run = run_recipe(recipe)
    metrics = run.record.stages[0].metrics
    assert metrics["prompts"] == 2 and metrics["grpo_steps"] == 2
    assert 0.0 <= float(metrics["grpo_reward_end"]) <= 1.0  # type: ignore[arg-type]
    assert str(metrics["model_out"]).startswith("hf:")
    stage_dir = run.artifacts_dir / "rl"
    assert (stage_dir / "model" / "model.safetensors").is_file()
    assert (stage_dir / "provenance.json").is_file() and (stage_dir / "grpo_done.json").is_file()
    assert not (stage_dir / "preferences.jsonl").exists()  # GRPO makes no pairs
    # A second run of the same recipe finds the stage done and trains nothing.
    again = run_recipe(recipe)
    assert again.record.stages[0].metrics["grpo_steps"] == 2
    with pytest.raises(ValidationError):
        RLConfig.model_validate({**config, "method": "ppo"})
    tagged = [{"stage": "rl", "config": {**config, "context_prompt": True}}]
    with pytest.raises(ConfigError, match="context_prompt"):
        run_recipe(Recipe(name="grpo-tag", model="hf:tiny", runs_dir=tmp_path, stages=tagged))  # type: ignore[arg-type]
