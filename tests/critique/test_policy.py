import pytest

from cai2.constitution import load_constitution, resolve
from cai2.context import Context, RiskTier
from cai2.critique import cai1_policy, cai2_policy, policy_by_name, select_principle
from cai2.critique._policy import step_rng
from cai2.errors import ConfigError


def test_layered_policy_goes_deeper_each_round() -> None:
    active = resolve(
        load_constitution("cai-2.0"),
        Context(risk=RiskTier.high, domains=["healthcare"], complexity=0.9),
    )
    assert active.max_depth >= 2
    policy = cai2_policy(rounds=3)
    used: list[str] = []
    depths = []
    for round_index in range(3):
        principle = select_principle(
            policy, active, round_index, used, step_rng(0, "p", round_index)
        )
        assert principle is not None
        used.append(principle.id)
        depths.append(principle.depth)
        # the most important principle of that depth: nothing of the same depth outranks it
        same_depth = [p for p in active.by_precedence() if p.depth == round_index]
        assert principle.id == same_depth[0].id
    assert depths == [0, 1, 2]
    assert len(set(used)) == 3


def test_layered_policy_falls_back_to_shallower_unused_principles() -> None:
    active = resolve(load_constitution("cai-2.0"), Context(risk=RiskTier.low, complexity=0.0))
    policy = cai2_policy()
    chosen = select_principle(policy, active, 5, [], step_rng(0, "p", 5))
    assert chosen is not None and chosen.depth < 5
    assert select_principle(policy, active, 5, list(active.ids), step_rng(0, "p", 5)) is None


def test_random_policy_draws_from_the_static_constitution_reproducibly() -> None:
    active = resolve(load_constitution("cai-1.0"), Context())
    policy = cai1_policy()
    draws = [select_principle(policy, active, r, [], step_rng(7, "x", r)) for r in range(40)]
    again = [select_principle(policy, active, r, [], step_rng(7, "x", r)) for r in range(40)]
    ids = [p.id for p in draws if p is not None]
    assert ids == [p.id for p in again if p is not None]
    assert all(i.startswith("static.") for i in ids)
    assert len(set(ids)) > 5  # spread over the list, not one fixed principle


def test_policy_presets() -> None:
    baseline = policy_by_name("cai-1.0", rounds=2)
    assert (baseline.rounds, baseline.selection, baseline.constitution) == (2, "random", "cai-1.0")
    assert not baseline.skip_when_no_violation and not baseline.stop_when_unchanged
    with pytest.raises(ConfigError, match="unknown critique policy"):
        policy_by_name("cai-3.0")
