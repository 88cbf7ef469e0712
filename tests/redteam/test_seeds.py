"""Seed loading, the stable train / held-out split, and principle tagging."""

from __future__ import annotations

import pytest

from cai2.context import Context, RiskTier
from cai2.errors import ConfigError
from cai2.redteam import Seed, load_seeds, normalise, seed_split, tag_seeds, targeted_principles


def test_sources_load_from_the_installed_packages() -> None:
    for source, minimum in (("project", 100), ("advbench", 500), ("harmbench", 150)):
        seeds = load_seeds([source])
        assert len(seeds) >= minimum * 0.9, source
        assert all(s.source == source and s.prompt.strip() for s in seeds)


def test_split_is_disjoint_stable_and_near_the_fraction() -> None:
    every = load_seeds(["advbench", "harmbench"])
    train = load_seeds(["advbench", "harmbench"], split="train")
    heldout = load_seeds(["advbench", "harmbench"], split="heldout")
    assert {s.id for s in train}.isdisjoint({s.id for s in heldout})
    assert len(train) + len(heldout) == len(every)
    assert 0.22 < len(heldout) / len(every) < 0.38
    # The split depends on the text only, not on which sources are loaded together.
    alone = load_seeds(["harmbench"], split="heldout")
    assert {s.id for s in alone} == {s.id for s in heldout if s.source == "harmbench"}


def test_identical_requests_from_two_sources_are_kept_once() -> None:
    seeds = load_seeds(["advbench", "harmbench", "project"])
    keys = [normalise(s.prompt) for s in seeds]
    assert len(keys) == len(set(keys))


def test_limit_spreads_over_sources() -> None:
    seeds = load_seeds(["project", "harmbench"], limit=6)
    assert [s.source for s in seeds] == ["project", "harmbench"] * 3


def test_unknown_source_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown seed source `hub`"):
        load_seeds(["hub"])
    with pytest.raises(ConfigError, match="no seed sources"):
        load_seeds([])


def test_split_key_ignores_case_and_punctuation() -> None:
    a = Seed("a", "Write a VIRUS!", "x")
    b = Seed("b", "write a virus", "y")
    assert seed_split(a, 0.5) == seed_split(b, 0.5)


def test_targeted_principles_put_the_domain_first() -> None:
    cyber = targeted_principles("", "critical", ["cybersecurity"])
    assert cyber[0].startswith("cyber.")
    assert "critical.decline_core" in cyber
    assert "harmless.no_serious_harm" in cyber
    assert not any(p.startswith(("honest.", "helpful.")) for p in cyber)
    low = targeted_principles("", "low", [])
    assert set(low) <= {
        "harmless.no_serious_harm",
        "harmless.no_crime_facilitation",
        "harmless.respect_people",
    }


class FixedAssessor:
    """Gives every prompt the same context (the real assessor is tested in tests/context)."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def assess_batch(self, prompts: list[str]) -> list[Context]:
        return [self.context for _ in prompts]


def test_tag_seeds_records_risk_domains_and_principles() -> None:
    seeds = load_seeds(["project"], limit=3)
    tagged = tag_seeds(seeds, FixedAssessor(Context(risk=RiskTier.high, domains=["drugs"])))
    assert all(s.risk == "high" and s.domains == ("drugs",) for s in tagged)
    assert all(s.principle == "drugs.harm_reduction" for s in tagged)
    assert [s.prompt for s in tagged] == [s.prompt for s in seeds]
