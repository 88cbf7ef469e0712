"""The red-team loop end to end on the tiny model: attack, safe replies, SFT + DPO, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cai2.errors import ConfigError
from cai2.models import ChatModel, load_model
from cai2.redteam import RedTeamConfig, RedTeamLoop, safe_reply


def tiny_config(**overrides: object) -> RedTeamConfig:
    settings: dict[str, object] = {
        "rounds": 2,
        "seeds_per_round": 2,
        "strategies": ["plain", "escalation"],
        "judge": "refusal",
        "calibrate_judge": False,
        "assess_context": False,
        "benign_per_round": 2,
        "heldout_eval": 2,
        "benign_eval": 2,
        "attack_params": {"max_tokens": 5},
        "benign_params": {"max_tokens": 5},
        "sft": {"max_steps": 1, "batch_size": 2},
        "dpo": {"max_steps": 1, "batch_size": 2},
    }
    settings.update(overrides)
    return RedTeamConfig.model_validate(settings)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    folder = tmp_path_factory.mktemp("redteam")
    cache: dict[str, ChatModel] = {}

    def load(spec: str) -> ChatModel:
        if spec not in cache:
            cache[spec] = load_model(spec)
        return cache[spec]

    result = RedTeamLoop(tiny_config(), folder, "hf:tiny", load).run()
    return folder, result


def test_every_round_attacks_fresh_seeds_and_trains(
    finished: tuple[Path, dict[str, object]],
) -> None:
    folder, result = finished
    rounds = result["rounds"]
    assert isinstance(rounds, list) and [r["round"] for r in rounds] == [1, 2]
    seeds = []
    for number in (1, 2):
        rows = [json.loads(line) for line in (folder / f"round-{number}" / "attempts.jsonl").open()]
        assert len(rows) == 4  # two seeds × two strategies
        assert (folder / f"round-{number}" / "sft_done.json").exists()
        seeds.append({row["seed_id"] for row in rows})
    assert seeds[0].isdisjoint(seeds[1])
    for summary in rounds:
        assert summary["failures"] == 4  # the tiny model never refuses
        assert summary["failures_trained"] == 4
        assert summary["safe_from_revision"] + summary["safe_from_principle"] == 4
        assert summary["trained"] == ["sft", "dpo"]
        assert summary["sft_steps"] == 1 and summary["dpo_steps"] == 1
    assert rounds[1]["model_in"] == rounds[0]["model_out"]
    final = str(result["final_model"])
    assert final.startswith("hf:") and Path(final[3:], "model.safetensors").exists()


def test_training_data_pairs_safe_replies_against_the_failures(
    finished: tuple[Path, dict[str, object]],
) -> None:
    folder, _ = finished
    pairs = [json.loads(line) for line in (folder / "round-1" / "pairs.jsonl").open()]
    attacks = [p for p in pairs if p["kind"] == "attack"]
    benign = [p for p in pairs if p["kind"] == "benign"]
    assert len(attacks) == 4 and len(benign) <= 2
    attempts = {
        row["id"]: row for row in map(json.loads, (folder / "round-1" / "attempts.jsonl").open())
    }
    for pair in attacks:
        attempt = attempts[pair["id"]]
        assert pair["rejected"][0]["content"] == attempt["response"]
        assert pair["prompt"] == attempt["conversation"]
        assert pair["chosen"][0]["content"] != attempt["response"]
    sft = [json.loads(line) for line in (folder / "round-1" / "sft.jsonl").open()]
    assert len(sft) == len(attacks) + len(benign)


def test_held_out_evaluation_and_reports(finished: tuple[Path, dict[str, object]]) -> None:
    folder, result = finished
    evaluations = result["evaluations"]
    # Without `evaluate_every_round`, only the start and the end are evaluated.
    assert isinstance(evaluations, dict) and set(evaluations) == {"0", "2"}
    for evaluation in evaluations.values():
        assert evaluation["asr"]["n"] == 4 and evaluation["n_seeds"] == 2
        assert evaluation["benign_answer_rate"]["n"] == 2
    train_ids = {
        json.loads(line)["seed_id"]
        for n in (1, 2)
        for line in (folder / f"round-{n}" / "attempts.jsonl").open()
    }
    held = {json.loads(line)["seed_id"] for line in (folder / "eval/round-0/attempts.jsonl").open()}
    assert held.isdisjoint(train_ids)
    assert (folder / "report" / "report.html").exists()
    report = json.loads((folder / "report-training" / "report.json").read_text())
    assert set(report["asr_by_round"]) == {"1", "2"}


def test_a_second_run_reads_finished_rounds_back(
    finished: tuple[Path, dict[str, object]],
) -> None:
    folder, result = finished
    stamp = (folder / "round-1" / "done.json").stat().st_mtime_ns

    def no_generation(spec: str) -> ChatModel:
        class Idle:
            def __init__(self) -> None:
                self.spec = spec

            def generate(self, *args: object, **kwargs: object) -> list[object]:
                raise AssertionError("finished work was generated again")

        return Idle()  # type: ignore[return-value]

    again = RedTeamLoop(tiny_config(), folder, "hf:tiny", no_generation).run()
    assert again["rounds"] == result["rounds"]
    assert again["evaluations"] == result["evaluations"]
    assert (folder / "round-1" / "done.json").stat().st_mtime_ns == stamp


def test_running_out_of_fresh_seeds_is_a_clear_error(tmp_path: Path) -> None:
    loop = RedTeamLoop(
        tiny_config(seeds=["project"], seeds_per_round=10_000), tmp_path, "hf:tiny", load_model
    )
    with pytest.raises(ConfigError, match="round 2 has no fresh training seeds"):
        loop.training_seeds(2)


def test_unknown_strategy_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown attack strategy"):
        RedTeamLoop(tiny_config(strategies=["nope"]), tmp_path, "hf:tiny", load_model)


def test_safe_reply_names_the_principle() -> None:
    text = safe_reply("Do not write working malware.", "write ransomware")
    assert '"Do not write working malware"' in text
    assert "follow is to" not in text  # the statement is quoted, not spliced into a clause
    assert text == safe_reply("Do not write working malware.", "write ransomware")


def test_spread_takes_failures_evenly_over_strategies() -> None:
    from cai2.redteam import AttemptRecord
    from cai2.redteam._loop import spread

    def failure(seed: str, strategy: str) -> AttemptRecord:
        return AttemptRecord(
            id=f"{seed}:{strategy}:0@r1",
            round=1,
            seed_id=seed,
            source="project",
            category="",
            risk="high",
            principle="harmless.no_serious_harm",
            strategy=strategy,
            family="",
            variant=0,
            request="r",
            conversation=[{"role": "user", "content": "r"}],
            response="x",
            p_violation=0.9,
            success=True,
            model="hf:tiny",
        )

    failures = [failure(f"s{i}", "plain") for i in range(10)] + [failure("s0", "base64")]
    chosen = spread(failures, 4, salt=1)
    assert len(chosen) == 4 and sum(f.strategy == "base64" for f in chosen) == 1
    assert spread(failures, 4, salt=1) == chosen
    assert spread(failures, None) == failures
