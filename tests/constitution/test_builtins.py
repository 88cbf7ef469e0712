"""Every built-in constitution loads, and each behaves the way its description promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai2.constitution import (
    BUILTIN_CONSTITUTIONS,
    KNOWN_DOMAINS,
    Severity,
    builtin_constitution_path,
    load_constitution,
    resolve,
)
from cai2.context._types import Context, RiskTier

DOCS_EXAMPLES = sorted((Path(__file__).parents[2] / "docs" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("name", BUILTIN_CONSTITUTIONS)
def test_every_builtin_loads_and_flattens(name: str) -> None:
    constitution = load_constitution(name)
    flat = constitution.flatten()
    ids = flat.principle_ids()
    assert flat.name == name
    assert len(ids) == len(set(ids)) >= 16
    for merged in flat.layers:
        assert set(merged.layer.activation.domains) <= set(KNOWN_DOMAINS)


def test_builtin_names_match_the_shipped_files() -> None:
    folder = builtin_constitution_path("cai-2.0").parent
    assert sorted(p.stem for p in folder.glob("*.yaml")) == sorted(BUILTIN_CONSTITUTIONS)


def test_cai_1_is_one_static_list_of_sixteen_pairs() -> None:
    flat = load_constitution("cai-1.0").flatten()
    assert [m.layer.id for m in flat.layers] == ["static"]
    assert len(flat.principle_ids()) == 16
    low = resolve(flat, Context())
    critical = resolve(flat, Context(risk=RiskTier.critical, domains=["healthcare"], complexity=1))
    # Static: the context changes nothing.
    assert low.ids == critical.ids and len(low.ids) == 16
    assert {p.depth for p in low.principles} == {0}


def test_cai_2_factual_question_gets_only_base_layers() -> None:
    active = resolve(load_constitution("cai-2.0"), Context(risk=RiskTier.low, domains=["general"]))
    assert [layer.id for layer in active.layers] == [
        "base.harmlessness",
        "base.honesty",
        "base.helpfulness",
    ]
    assert all(p.depth == 0 for p in active.principles)
    assert "helpful.address_request" in active.ids and "honest.accuracy" in active.ids


def test_cai_2_medical_question_adds_caution_and_healthcare_layers() -> None:
    context = Context(risk=RiskTier.high, domains=["healthcare"], complexity=0.3)
    active = resolve(load_constitution("cai-2.0"), context)
    layer_ids = [layer.id for layer in active.layers]
    assert layer_ids[:3] == ["base.harmlessness", "base.honesty", "base.helpfulness"]
    assert {"risk.medium", "risk.high", "domain.healthcare"} <= set(layer_ids)
    assert "risk.critical" not in layer_ids and "domain.finance" not in layer_ids
    assert "health.urgent_care" in active.ids  # sub-principle unfolds at high risk
    assert active.principle("health.urgent_care").depth == 2


def test_cai_2_base_principles_carry_few_shot_examples_and_severities() -> None:
    flat = load_constitution("cai-2.0").flatten()
    base = [m.layer for m in flat.layers if m.layer.id.startswith("base.")]
    assert len(base) == 3
    severities = set()
    for layer in base:
        for principle in layer.principles:
            severities.add(principle.severity)
            assert principle.examples.compliant, principle.id
            assert principle.examples.violating, principle.id
            assert all(e.revision for e in principle.examples.violating), principle.id
    assert {Severity.low, Severity.high, Severity.critical} <= severities


@pytest.mark.parametrize("name", [n for n in BUILTIN_CONSTITUTIONS if n.startswith("cai-2.0-")])
def test_domain_packs_extend_cai_2_and_keep_its_hard_limits(name: str) -> None:
    pack = load_constitution(name)
    assert pack.extends == "cai-2.0"
    parent = load_constitution("cai-2.0").flatten()
    flat = pack.flatten()
    locked = [p for _, p, _ in parent.principles() if p.locked]
    assert len(locked) >= 8
    by_id = {p.id: p for _, p, _ in flat.principles()}
    for principle in locked:
        assert principle.id in by_id, f"{name} lost hard limit {principle.id}"
        assert by_id[principle.id].severity.rank >= principle.severity.rank
    assert len(flat.principle_ids()) > len(parent.principle_ids())


def test_healthcare_pack_is_stricter_for_medical_prompts() -> None:
    context = Context(risk=RiskTier.medium, domains=["healthcare"])
    base = resolve(load_constitution("cai-2.0"), context)
    pack = resolve(load_constitution("cai-2.0-healthcare"), context)
    assert set(base.ids) < set(pack.ids)
    assert {"healthcare.cite_sources", "healthcare.disclaimer"} <= set(pack.ids)
    assert pack.principle("health.see_professional").severity is Severity.high
    assert base.principle("health.see_professional").severity is Severity.medium
    assert pack.principle("honest.calibration").overrides[0].startswith("tightened by")


def test_creative_pack_relaxes_for_fiction_without_touching_hard_limits() -> None:
    context = Context(risk=RiskTier.medium, domains=["creative_writing"])
    base = resolve(load_constitution("cai-2.0"), context)
    creative = resolve(load_constitution("cai-2.0-creative-writing"), context)
    assert creative.principle("caution.name_risks").severity is Severity.low
    assert base.principle("caution.name_risks").severity is Severity.medium
    assert "creative.serve_the_story" in creative.ids
    for hard in ("harmless.no_serious_harm", "creative.fiction_is_not_a_loophole"):
        assert creative.principle(hard).severity is Severity.critical
        assert creative.principle(hard).principle.locked


def test_education_pack_widens_minors_layer_to_education() -> None:
    active = resolve(load_constitution("cai-2.0-education"), Context(domains=["education"]))
    assert "domain.minors" in [layer.id for layer in active.layers]
    assert active.principle("minors.age_appropriate").severity is Severity.critical
    assert "education.support_learning" in active.ids


@pytest.mark.parametrize("path", DOCS_EXAMPLES, ids=lambda p: p.name)
def test_docs_examples_validate(path: Path) -> None:
    constitution = load_constitution(path)
    flat = constitution.flatten()
    assert flat.lineage[-1] == "cai-2.0"
    assert flat.overrides or flat.disabled


def test_docs_has_an_example() -> None:
    assert DOCS_EXAMPLES, "docs/examples must hold at least one organisation constitution"
