"""Protocols: registry contract, and each protocol against its stated model."""

from __future__ import annotations

import numpy as np
import pytest

from cai2.errors import ConfigError
from cai2.simulation import (
    PROTOCOLS,
    Debate,
    DebateConfig,
    DirectHumanReview,
    FailureModes,
    Hierarchy,
    HierarchyConfig,
    OversightGame,
    OversightSetting,
    WeakToStrong,
    WeakToStrongConfig,
    build_protocol,
    evaluate_protocol,
    optimal_nso,
)

GAME = OversightGame.from_gaps(2000.0, 1000.0)


def test_builtin_protocols_are_registered() -> None:
    assert {"direct_human_review", "hierarchy", "debate", "weak_to_strong"} <= set(PROTOCOLS)


@pytest.mark.parametrize("name", sorted(PROTOCOLS.names()))
@pytest.mark.parametrize("gap", [0.0, 400.0, 2400.0])
def test_every_registered_protocol_gives_probabilities(name: str, gap: float) -> None:
    protocol = build_protocol(name)
    setting = OversightSetting(OversightGame(), 0.0, gap)
    outcome = evaluate_protocol(
        protocol,
        setting,
        FailureModes(misalignment_rate=0.5, correlation=0.3),
        trials=500,
        rng=np.random.default_rng(0),
    )
    assert 0.0 <= outcome.success <= 1.0
    assert np.all((outcome.level_errors >= 0.0) & (outcome.level_errors <= 1.0))
    assert outcome.chain.human_effort >= 0.0
    assert outcome.mc_successes is not None and 0 <= outcome.mc_successes <= 500


def test_direct_review_is_the_one_step_engels_game() -> None:
    outcome = evaluate_protocol(
        DirectHumanReview(), OversightSetting(GAME, 0.0, 2000.0), FailureModes()
    )
    assert outcome.success == pytest.approx(0.00315, abs=5e-5)
    assert outcome.chain.human_effort == 1.0


def test_optimal_hierarchy_without_humans_is_optimal_nso() -> None:
    setting = OversightSetting(GAME, 0.0, 2000.0)
    outcome = evaluate_protocol(
        Hierarchy(HierarchyConfig(depth="optimal")), setting, FailureModes()
    )
    plan = optimal_nso(GAME, 0.0, 2000.0, max_steps=50)
    assert outcome.chain.depth == plan.steps == 11
    assert outcome.success == pytest.approx(plan.success, rel=1e-12)
    # The human oversees level 1 and nothing else.
    assert outcome.chain.human_effort == 1.0


def test_checkpoints_and_spot_checks_add_human_reviews() -> None:
    hierarchy = Hierarchy(HierarchyConfig(depth=7, checkpoint_every=3, spot_check_rate=0.1))
    assert hierarchy.checkpoint_levels(7) == {3, 6}
    chain = hierarchy.chain(OversightSetting(OversightGame(), 0.0, 700.0), 7)
    np.testing.assert_allclose(chain.human_review_probability, [0, 0.1, 1, 0.1, 0.1, 1, 0.1])
    assert chain.human_effort == pytest.approx(1 + 2 + 0.4)
    # Human reviews of higher levels are weaker: the human is further behind.
    assert np.all(np.diff(chain.human_catch) < 0)


def test_checkpoints_raise_success_of_a_fixed_hierarchy() -> None:
    setting = OversightSetting(OversightGame(), 0.0, 800.0)
    failure = FailureModes(misalignment_rate=0.3)
    plain = evaluate_protocol(Hierarchy(HierarchyConfig(depth=6)), setting, failure)
    checked = evaluate_protocol(
        Hierarchy(HierarchyConfig(depth=6, checkpoint_every=1)), setting, failure
    )
    assert checked.success > plain.success


def test_debate_accuracy_model() -> None:
    flat = Debate()
    assert flat.judge_accuracy(0.0) == pytest.approx(0.88)
    assert flat.judge_accuracy(3000.0) == pytest.approx(0.88)
    rising = Debate(DebateConfig(advantage_slope=0.1))
    falling = Debate(DebateConfig(advantage_slope=-0.1))
    assert rising.judge_accuracy(1000.0) > 0.88 > falling.judge_accuracy(1000.0)
    # 400 Elo more advantage multiplies the odds by 10.
    odds = 0.88 / 0.12 * 10
    assert Debate(DebateConfig(advantage_slope=1.0)).judge_accuracy(400.0) == pytest.approx(
        odds / (1 + odds)
    )


def test_weak_to_strong_interpolates_by_pgr() -> None:
    setting = OversightSetting(OversightGame(), 0.0, 1200.0)
    weak = float(setting.game.guard_win_probability(0.0, 1200.0))
    strong = float(setting.game.guard_win_probability(1200.0, 1200.0))
    accuracy = {
        pgr: WeakToStrong(WeakToStrongConfig(performance_gap_recovered=pgr)).overseer_accuracy(
            setting
        )
        for pgr in (0.0, 0.25, 1.0)
    }
    assert accuracy[0.0] == pytest.approx(weak)
    assert accuracy[1.0] == pytest.approx(strong)
    assert accuracy[0.25] == pytest.approx(weak + 0.25 * (strong - weak))


def test_weak_to_strong_overseer_can_be_compromised() -> None:
    setting = OversightSetting(OversightGame(), 0.0, 400.0)
    clean = evaluate_protocol(WeakToStrong(), setting, FailureModes())
    compromised = evaluate_protocol(
        WeakToStrong(), setting, FailureModes(compromise_probability=0.5)
    )
    assert compromised.success == pytest.approx(clean.success * 0.5)


def test_build_protocol_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="unknown protocol `nope`"):
        build_protocol("nope")
    with pytest.raises(ConfigError, match="spot_check_rate") as info:
        build_protocol("hierarchy", {"spot_check_rate": 2.0})
    assert info.value.key == "spot_check_rate"
    with pytest.raises(ConfigError, match="unknown key `depht`"):
        build_protocol("hierarchy", {"depht": 3})
    with pytest.raises(ConfigError, match="depth"):
        build_protocol("hierarchy", {"depth": 0})


def test_human_effort_budget_limits_the_optimal_depth() -> None:
    setting = OversightSetting(OversightGame(), 0.0, 200.0)
    humans = {"spot_check_rate": 0.05, "checkpoint_every": 2}
    unlimited = Hierarchy(HierarchyConfig(depth="optimal", **humans))
    limited = Hierarchy(HierarchyConfig(depth="optimal", human_effort_budget=3.0, **humans))
    assert np.all(limited.candidates(setting).human_effort <= 3.0)
    free = evaluate_protocol(unlimited, setting, FailureModes())
    capped = evaluate_protocol(limited, setting, FailureModes())
    # Without a budget, depth buys success through ever more human checkpoints.
    assert free.chain.human_effort > 3.0 >= capped.chain.human_effort
    assert free.success >= capped.success
