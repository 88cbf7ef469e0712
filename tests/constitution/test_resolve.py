"""Resolution: which layers and principles are on for a context, in what order, and why."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cai2.constitution import (
    BUILTIN_CONSTITUTIONS,
    KNOWN_DOMAINS,
    Constitution,
    FlattenedConstitution,
    Severity,
    load_constitution,
    resolve,
)
from cai2.context._types import Context, RiskTier

Build = Callable[..., dict[str, Any]]
WriteConstitution = Callable[..., Path]

contexts = st.builds(
    Context,
    risk=st.sampled_from(list(RiskTier)),
    domains=st.lists(st.sampled_from(KNOWN_DOMAINS), unique=True, max_size=4),
    complexity=st.floats(0.0, 1.0, allow_nan=False),
)


@cache
def flattened(name: str) -> FlattenedConstitution:
    return load_constitution(name).flatten()


@pytest.fixture
def small(principle: Build, layer: Build) -> Constitution:
    return Constitution.model_validate(
        {
            "name": "small",
            "layers": [
                layer("dom", principle("d.one"), activation={"domains": ["finance", "legal"]}),
                layer(
                    "base",
                    principle(
                        "b.one",
                        children=[
                            principle(
                                "b.child",
                                unfold={"min_risk": "high"},
                                children=[principle("b.grand", unfold={"min_complexity": 0.5})],
                            )
                        ],
                    ),
                    principle("b.two"),
                ),
                layer("hi", principle("h.one"), activation={"min_risk": "high"}, priority=5),
                layer("med", principle("m.one"), activation={"min_risk": "medium"}, priority=1),
                layer("cx", principle("c.one"), activation={"min_complexity": 0.7}),
            ],
        }
    )


def test_low_risk_plain_context_gets_only_unconditional_layers(small: Constitution) -> None:
    active = small.resolve(Context())
    assert [layer.id for layer in active.layers] == ["base"]
    assert active.ids == ("b.one", "b.two")
    assert active.layers[0].reason == "always on (no conditions)"
    off = {item.id: item.reason for item in active.inactive}
    assert off["hi"] == "risk low < high"
    assert off["dom"] == "none of domains finance, legal present"
    assert off["b.child"] == "risk low < high"


def test_order_is_base_risk_complexity_domain_then_depth(
    principle: Build, small: Constitution
) -> None:
    context = Context(risk=RiskTier.critical, domains=["legal"], complexity=0.9)
    active = small.resolve(context)
    assert [layer.id for layer in active.layers] == ["base", "med", "hi", "cx", "dom"]
    assert [layer.kind for layer in active.layers] == [
        "base",
        "risk",
        "risk",
        "complexity",
        "domain",
    ]
    assert active.ids == (
        "b.one", "b.two",  # depth 0
        "b.child", "m.one", "h.one", "c.one", "d.one",  # depth 1
        "b.grand",  # depth 2
    )  # fmt: skip
    assert {d: [p.id for p in ps] for d, ps in active.by_depth().items()} == {
        0: ["b.one", "b.two"],
        1: ["b.child", "m.one", "h.one", "c.one", "d.one"],
        2: ["b.grand"],
    }
    assert [p.id for p in active.up_to_depth(0)] == ["b.one", "b.two"]
    assert active.max_depth == 2
    grand = active.principle("b.grand")
    assert (grand.level, grand.parent_id, grand.layer_id) == (2, "b.child", "base")
    assert grand.reason == "sub-principle of b.child, unfolds because complexity 0.90 ≥ 0.5"
    assert active.layers[-1].reason == "domain legal present"


def test_explain_names_every_active_item_and_why(small: Constitution) -> None:
    context = Context(risk=RiskTier.high, domains=["finance"], complexity=0.2)
    text = small.resolve(context).explain()
    assert "risk=high domains=finance complexity=0.20" in text
    assert "layer hi [risk, priority 5]: risk high ≥ high" in text
    assert (
        "    - b.child (depth 1, medium): sub-principle of b.one, unfolds because risk high ≥ high"
        in text
    )
    assert "off: principle b.grand: complexity 0.20 < 0.5" in text
    assert "off: layer cx: complexity 0.20 < 0.7" in text


def test_precedence_orders_by_priority_then_severity() -> None:
    context = Context(risk=RiskTier.critical, domains=["healthcare"])
    active = resolve(flattened("cai-2.0"), context)
    ranked = active.by_precedence()
    assert ranked[0].layer_id == "risk.critical"
    assert ranked[0].severity is Severity.critical
    priorities = [p.priority for p in ranked]
    assert priorities == sorted(priorities, reverse=True)


def test_overrides_are_applied_and_explained(
    write_constitution: WriteConstitution, principle: Build
) -> None:
    path = write_constitution(
        {
            "name": "org",
            "extends": "cai-2.0",
            "overrides": [
                {
                    "principle": "helpful.clear",
                    "action": "tighten",
                    "severity": "high",
                    "add_tags": ["org"],
                    "reason": "our users read on phones",
                },
                {
                    "principle": "caution.name_risks",
                    "action": "relax",
                    "severity": "low",
                    "statement": "Mention risks only when asked.",
                    "reason": "expert audience",
                },
                {"principle": "politics.even_handed", "action": "disable", "reason": "off-topic"},
            ],
        }
    )
    active = resolve(load_constitution(path), Context(risk="medium", domains=["politics"]))
    clear = active.principle("helpful.clear")
    assert clear.severity is Severity.high and "org" in clear.principle.tags
    assert clear.overrides == ("tightened by org (severity → high): our users read on phones",)
    relaxed = active.principle("caution.name_risks")
    assert relaxed.severity is Severity.low
    assert relaxed.statement == "Mention risks only when asked."
    assert "politics.even_handed" not in active.ids
    assert "domain.politics" in [layer.id for layer in active.layers]  # layer on, principle off
    off = {item.id: item.reason for item in active.inactive}
    assert off["politics.even_handed"] == "disabled by org: off-topic"


def test_child_overrides_win_over_parent_overrides(
    write_constitution: WriteConstitution, principle: Build
) -> None:
    path = write_constitution(
        {
            "name": "hospital",
            "extends": "cai-2.0-healthcare",
            "overrides": [
                {
                    "principle": "honest.calibration",
                    "action": "relax",
                    "severity": "medium",
                    "reason": "clinicians only",
                }
            ],
        }
    )
    active = resolve(load_constitution(path), Context())
    calibration = active.principle("honest.calibration")
    assert calibration.severity is Severity.medium
    assert [line.split(" (")[0] for line in calibration.overrides] == [
        "tightened by cai-2.0-healthcare",
        "relaxed by hospital",
    ]


def test_inherit_replace_and_extend(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    path = write_constitution(
        {
            "name": "org",
            "extends": "cai-2.0",
            "layers": [
                layer("base.helpfulness", principle("org.helpful"), inherit="replace"),
                {
                    "id": "domain.finance",
                    "inherit": "extend",
                    "priority": 99,
                    "principles": [principle("org.finance_extra")],
                },
            ],
        }
    )
    flat = load_constitution(path).flatten()
    helpful = flat.layer("base.helpfulness")
    assert [p.id for p in helpful.layer.principles] == ["org.helpful"]
    assert helpful.source == "org"
    finance = flat.layer("domain.finance").layer
    assert [p.id for p in finance.principles] == ["finance.no_promises", "org.finance_extra"]
    assert finance.priority == 99
    assert finance.activation.domains == ["finance"]  # not set in the child, so inherited
    assert "helpful.address_request" not in flat.principle_ids()


def test_child_may_reuse_ids_of_a_layer_it_replaces(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    path = write_constitution(
        {
            "name": "org",
            "extends": "cai-2.0",
            "layers": [
                layer(
                    "base.helpfulness",
                    principle("helpful.address_request", severity="critical"),
                    inherit="replace",
                )
            ],
        }
    )
    active = resolve(load_constitution(path), Context())
    assert active.principle("helpful.address_request").severity is Severity.critical


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(BUILTIN_CONSTITUTIONS), context=contexts)
def test_resolution_is_deterministic(name: str, context: Context) -> None:
    first = resolve(flattened(name), context)
    second = resolve(load_constitution(name), context.model_copy(deep=True))
    assert first == second
    assert first.model_dump_json() == second.model_dump_json()


@settings(max_examples=80, deadline=None)
@given(
    name=st.sampled_from(BUILTIN_CONSTITUTIONS),
    context=contexts,
    risk=st.sampled_from(list(RiskTier)),
    extra_complexity=st.floats(0.0, 1.0, allow_nan=False),
    extra_domains=st.lists(st.sampled_from(KNOWN_DOMAINS), unique=True, max_size=3),
)
def test_resolution_is_monotone(
    name: str,
    context: Context,
    risk: RiskTier,
    extra_complexity: float,
    extra_domains: list[str],
) -> None:
    """Raising risk or complexity or adding domains never switches a layer or principle off."""
    higher = Context(
        risk=max(context.risk, risk, key=lambda r: r.rank),
        domains=sorted({*context.domains, *extra_domains}),
        complexity=max(context.complexity, extra_complexity),
    )
    before = resolve(flattened(name), context)
    after = resolve(flattened(name), higher)
    assert {layer.id for layer in before.layers} <= {layer.id for layer in after.layers}
    assert set(before.ids) <= set(after.ids)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(BUILTIN_CONSTITUTIONS), context=contexts)
def test_resolution_structure_invariants(name: str, context: Context) -> None:
    active = resolve(flattened(name), context)
    depths = [p.depth for p in active.principles]
    assert depths == sorted(depths)
    assert [p for group in active.by_depth().values() for p in group] == list(active.principles)
    ids = set(active.ids)
    assert len(ids) == len(active.principles)
    layer_ids = {layer.id for layer in active.layers}
    for p in active.principles:
        assert p.layer_id in layer_ids
        assert p.parent_id is None or p.parent_id in ids
        assert p.reason and not p.principle.children
    # Every layer is accounted for exactly once: active or off.
    off_layers = {item.id for item in active.inactive if item.kind == "layer"}
    assert layer_ids.isdisjoint(off_layers)
    assert len(layer_ids) + len(off_layers) == len(flattened(name).layers)


@pytest.mark.parametrize("complexity", [0.0, 0.55, 1.0])
def test_more_complexity_unfolds_more_children(complexity: float, small: Constitution) -> None:
    active = small.resolve(Context(risk=RiskTier.high, complexity=complexity))
    assert ("b.grand" in active.ids) == (complexity >= 0.5)


def test_child_can_redeclare_a_principle_its_parent_disabled(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    write_constitution(
        {
            "name": "parent",
            "extends": "cai-2.0",
            "overrides": [{"principle": "helpful.clear", "action": "disable", "reason": "x"}],
        },
        file="parent.yaml",
    )
    child = write_constitution(
        {
            "name": "child",
            "extends": "parent.yaml",
            "layers": [layer("child.style", principle("helpful.clear", severity="high"))],
        },
        file="child.yaml",
    )
    active = resolve(load_constitution(child), Context())
    assert active.principle("helpful.clear").layer_id == "child.style"
    assert "helpful.clear" not in {item.id for item in active.inactive}


def test_active_constitution_round_trips_through_json() -> None:
    context = Context(risk=RiskTier.high, domains=["cybersecurity"], complexity=0.8)
    active = resolve(flattened("cai-2.0-cybersecurity"), context)
    again = type(active).model_validate_json(active.model_dump_json())
    assert again == active
    assert again.principle("cyber.no_live_targets").depth == 2
