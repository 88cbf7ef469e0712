"""Property tests for the loader: random constitutions load or fail cleanly, and round-trip."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cai2.constitution import KNOWN_DOMAINS, Constitution, load_constitution, resolve
from cai2.context._types import Context, RiskTier
from cai2.errors import ConfigError

RISKS = [tier.value for tier in RiskTier]


def principle(principle_id: str, **extra: Any) -> dict[str, Any]:
    """A principle mapping with placeholder texts (strategies cannot use pytest fixtures)."""
    texts = ("statement", "critique_request", "revision_request", "comparison_question")
    return {"id": principle_id, **{key: f"{key} of {principle_id}" for key in texts}, **extra}


# Drawn ids often clash (an error the loader must catch) unless the file is renumbered below.
ids = st.sampled_from([f"p{i}" for i in range(24)])
# Mostly valid values with the occasional mistake, so both branches of each test are exercised.
domains = st.sampled_from([*KNOWN_DOMAINS[:6] * 3, "not_a_domain"])
complexities = st.sampled_from([*[0.0, 0.3, 0.5, 0.8, 1.0] * 3, 1.2])


@st.composite
def unfolds(draw: st.DrawFn) -> dict[str, Any]:
    shape = draw(st.sampled_from(["risk", "complexity", "both"] * 3 + ["empty"]))
    out: dict[str, Any] = {}
    if shape in ("risk", "both"):
        out["min_risk"] = draw(st.sampled_from(RISKS))
    if shape in ("complexity", "both"):
        out["min_complexity"] = draw(complexities)
    return out


def principles(depth: int, *, child: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    children = st.lists(principles(depth - 1, child=True), max_size=2) if depth > 0 else st.just([])
    # Children usually carry an unfold condition and top-level principles usually do not, so
    # both valid files and each kind of mistake turn up.
    unfold = st.sampled_from([True] * 9 + [False]).flatmap(
        lambda present: unfolds() if present else st.none()
    )
    return st.builds(
        lambda pid, severity, unfold, kids: principle(
            pid,
            severity=severity,
            **({"unfold": unfold} if unfold is not None else {}),
            **({"children": kids} if kids else {}),
        ),
        ids,
        st.sampled_from(["low", "medium", "high", "critical"]),
        unfold
        if child
        else st.sampled_from([False] * 9 + [True]).flatmap(
            lambda misplaced: unfolds() if misplaced else st.none()
        ),
        children,
    )


@st.composite
def constitutions(draw: st.DrawFn) -> dict[str, Any]:
    layers = []
    for index in range(draw(st.integers(1, 4))):
        activation: dict[str, Any] = {}
        if draw(st.booleans()):
            activation["min_risk"] = draw(st.sampled_from(RISKS))
        if draw(st.booleans()):
            activation["domains"] = draw(st.lists(domains, min_size=1, max_size=2, unique=True))
        if draw(st.booleans()):
            activation["min_complexity"] = draw(complexities)
        layers.append(
            {
                "id": f"layer{index}",
                "priority": draw(st.integers(-5, 5)),
                "activation": activation,
                "principles": draw(st.lists(principles(2), min_size=1, max_size=3)),
            }
        )
    if draw(st.sampled_from([True] * 4 + [False])):
        # Usually renumber so ids are unique; otherwise keep the (often clashing) drawn ids.
        counter = iter(range(10_000))
        for item in layers:
            _renumber(item["principles"], counter)
    return {"name": "fuzz", "layers": layers}


def _renumber(items: list[dict[str, Any]], counter: Iterator[int]) -> None:
    for item in items:
        item["id"] = f"p{next(counter)}"
        _renumber(item.get("children", []), counter)


def test_strategy_produces_loadable_constitutions() -> None:
    """Guard against a vacuous fuzz test: the generator must reach valid files too."""

    def loads(data: dict[str, Any]) -> tuple[bool, bool]:
        """(loads, has sub-principles)."""
        try:
            Constitution.model_validate(data).flatten()
        except ConfigError:
            return False, False
        return True, any(p.get("children") for item in data["layers"] for p in item["principles"])

    hits: list[tuple[bool, bool]] = []

    @settings(max_examples=60, database=None, deadline=None)
    @given(constitutions())
    def probe(data: dict[str, Any]) -> None:
        hits.append(loads(data))

    probe()
    valid = sum(ok for ok, _ in hits)
    nested = sum(ok and kids for ok, kids in hits)
    assert valid >= 3, f"{valid} valid, {nested} with children, of {len(hits)}"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=constitutions(), context=st.builds(Context, risk=st.sampled_from(list(RiskTier))))
def test_random_constitutions_load_or_fail_with_a_location(
    data: dict[str, Any], context: Context
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        try:
            constitution = load_constitution(path)
        except ConfigError as error:
            assert error.file == str(path)
            assert error.line is not None and error.line >= 1
            assert error.key and error.key.startswith("layers.")
            return
    active = resolve(constitution, context)
    assert len(set(active.ids)) == len(active.ids)
    assert all(layer.id.startswith("layer") for layer in active.layers)


@settings(max_examples=30, deadline=None)
@given(data=constitutions())
def test_valid_constitutions_round_trip_through_yaml(data: dict[str, Any]) -> None:
    try:
        original = Constitution.model_validate(data)
        original.flatten()
    except ConfigError:
        return
    dumped = yaml.safe_dump(original.model_dump(mode="json", exclude_defaults=True))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "again.yaml"
        path.write_text(dumped, encoding="utf-8")
        again = load_constitution(path)
    assert again.model_dump() == original.model_dump()
