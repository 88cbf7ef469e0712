"""diff_constitutions and the exported JSON Schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cai2.constitution import (
    Constitution,
    constitution_json_schema,
    diff_constitutions,
    load_constitution,
)
from cai2.constitution._schema import constitution_json_schema_text

Build = Callable[..., dict[str, Any]]
WriteConstitution = Callable[..., Path]


def test_diff_of_a_constitution_with_itself_is_empty() -> None:
    difference = diff_constitutions(load_constitution("cai-2.0"), load_constitution("cai-2.0"))
    assert difference.is_empty
    assert difference.lines() == ["diff cai-2.0 → cai-2.0", "(no differences)"]


def test_diff_against_parent_lists_every_change(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    path = write_constitution(
        {
            "name": "org",
            "extends": "cai-2.0",
            "layers": [
                layer("org.layer", principle("org.rule"), activation={"domains": ["legal"]}),
                {"id": "domain.legal", "inherit": "extend", "priority": 1},
            ],
            "overrides": [
                {"principle": "helpful.clear", "action": "disable", "reason": "r"},
                {
                    "principle": "honest.calibration",
                    "action": "tighten",
                    "severity": "high",
                    "reason": "r",
                },
            ],
        }
    )
    child = load_constitution(path)
    assert child.parent is not None
    difference = diff_constitutions(child.parent, child)
    assert difference.layers_added == ("org.layer",)
    assert difference.layers_removed == ()
    assert [(c.item, c.field, c.before, c.after) for c in difference.layers_changed] == [
        ("domain.legal", "priority", 75, 1)
    ]
    assert difference.principles_added == ("org.rule",)
    assert difference.principles_removed == ("helpful.clear",)
    assert [(c.item, c.field, c.before, c.after) for c in difference.principles_changed] == [
        ("honest.calibration", "severity", "medium", "high")
    ]
    assert difference.lines()[1:] == [
        "+ layer org.layer",
        "~ layer domain.legal.priority: 75 → 1",
        "+ principle org.rule",
        "- principle helpful.clear",
        "~ principle honest.calibration.severity: medium → high",
    ]


def test_diff_is_antisymmetric() -> None:
    a, b = load_constitution("cai-1.0"), load_constitution("cai-2.0")
    forward, backward = diff_constitutions(a, b), diff_constitutions(b, a)
    assert forward.principles_added == backward.principles_removed
    assert forward.layers_removed == backward.layers_added == ("static",)


def test_json_schema_describes_the_format() -> None:
    schema = constitution_json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert set(schema["required"]) == {"name"}
    assert schema["additionalProperties"] is False
    definitions = schema["$defs"]
    principle_schema = definitions["Principle"]
    assert principle_schema["additionalProperties"] is False
    assert {
        "id",
        "statement",
        "critique_request",
        "revision_request",
        "comparison_question",
    } <= set(principle_schema["required"])
    assert principle_schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Principle"}
    assert definitions["RiskTier"]["enum"] == ["low", "medium", "high", "critical"]
    # Every field carries its description (shown by editors on hover).
    for name, model in definitions.items():
        for field, spec in model.get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field} has no description"
    assert json.loads(constitution_json_schema_text()) == schema


def test_json_schema_accepts_what_the_model_accepts() -> None:
    """Spot-check the schema's key constraints against a built-in file's data."""
    schema = constitution_json_schema()
    data = load_constitution("cai-2.0").model_dump(mode="json")
    assert set(data) <= set(schema["properties"])
    pattern = schema["$defs"]["Principle"]["properties"]["id"]["pattern"]
    assert pattern == "^[a-z0-9][a-z0-9_.-]*$"
    assert Constitution.model_validate(data).name == "cai-2.0"
