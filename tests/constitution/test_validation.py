"""Each kind of invalid constitution fails with a ConfigError naming file, line and key path."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cai2.constitution import Constitution, load_constitution
from cai2.errors import ConfigError

Build = Callable[..., dict[str, Any]]
WriteConstitution = Callable[..., Path]

PRINCIPLE = """\
      - id: {id}
        statement: S.
        critique_request: C.
        revision_request: R.
        comparison_question: Q?
"""


def build(*lines: str) -> str:
    return "".join(lines)


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_constitution(path)
    return info.value


def test_malformed_yaml_reports_the_line(write_constitution: WriteConstitution) -> None:
    path = write_constitution("name: x\nlayers:\n  - id: a\n    principles: [\n")
    error = load_error(path)
    assert error.file == str(path)
    assert error.line == 5 and "malformed YAML" in error.message


def test_unknown_field_reports_line_and_key(write_constitution: WriteConstitution) -> None:
    text = build(
        "name: org\n",
        "layers:\n",
        "  - id: base\n",
        "    principles:\n",
        PRINCIPLE.format(id="p.one"),
        "        severty: high\n",
    )
    error = load_error(write_constitution(text))
    assert (error.line, error.key) == (10, "layers.0.principles.0.severty")
    assert "unknown key `severty`" in error.message


def test_wrong_value_type_reports_key(write_constitution: WriteConstitution) -> None:
    text = build(
        "name: org\n",
        "layers:\n",
        "  - id: base\n",
        "    activation: {min_risk: extreme}\n",
        "    principles:\n",
        PRINCIPLE.format(id="p.one"),
    )
    error = load_error(write_constitution(text))
    assert (error.line, error.key) == (4, "layers.0.activation.min_risk")


def test_duplicate_principle_ids_across_layers(write_constitution: WriteConstitution) -> None:
    text = build(
        "name: org\n",
        "layers:\n",
        "  - id: first\n",
        "    principles:\n",
        PRINCIPLE.format(id="p.same"),
        "  - id: second\n",
        "    activation: {min_risk: high}\n",
        "    principles:\n",
        PRINCIPLE.format(id="p.same"),
    )
    error = load_error(write_constitution(text))
    assert (error.line, error.key) == (13, "layers.1.principles.0.id")
    assert "duplicate principle id `p.same`" in error.message
    assert "layers.0.principles.0" in error.message


def test_duplicate_layer_ids(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    data = {"name": "org", "layers": [layer("same", principle("a")), layer("same", principle("b"))]}
    error = load_error(write_constitution(data))
    assert error.key == "layers.1.id" and "duplicate layer id" in error.message


def test_duplicate_id_against_parent(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    data = {
        "name": "org",
        "extends": "cai-2.0",
        "layers": [layer("org.extra", principle("honest.accuracy"))],
    }
    path = write_constitution(data)
    error = load_error(path)
    assert error.key == "layers.0.principles.0.id"
    assert error.line == 6 and error.file == str(path)
    assert "already used by a parent" in error.message


def test_override_of_unknown_principle_suggests_close_ids(
    write_constitution: WriteConstitution,
) -> None:
    text = textwrap.dedent(
        """\
        name: org
        extends: cai-2.0
        overrides:
          - principle: honest.acuracy
            action: tighten
            severity: critical
            reason: typo on purpose
        """
    )
    error = load_error(write_constitution(text))
    assert (error.line, error.key) == (4, "overrides.0.principle")
    assert "unknown principle `honest.acuracy`" in error.message
    assert "`honest.accuracy`" in error.message


def test_missing_parent_file_points_at_extends(write_constitution: WriteConstitution) -> None:
    path = write_constitution("name: org\n\nextends: ./nowhere.yaml\nlayers: []\n")
    error = load_error(path)
    assert (error.file, error.line, error.key) == (str(path), 3, "extends")
    assert "not found" in error.message


def test_extends_cycle_is_reported(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    a_path = write_constitution({"name": "a", "extends": "b.yaml", "layers": []}, file="a.yaml")
    b_path = write_constitution(
        {"name": "b", "extends": "c.yaml", "layers": [layer("b.layer", principle("b.p"))]},
        file="b.yaml",
    )
    write_constitution({"name": "c", "extends": "a.yaml", "layers": []}, file="c.yaml")
    error = load_error(b_path)
    # a.yaml closes the loop, so the error points at its `extends`.
    assert error.file == str(a_path) and error.key == "extends" and error.line == 2
    assert "cycle in `extends`: b.yaml → c.yaml → a.yaml → b.yaml" in error.message


def test_self_extension_is_a_cycle(write_constitution: WriteConstitution) -> None:
    path = write_constitution({"name": "self", "extends": "org.yaml", "layers": []})
    error = load_error(path)
    assert "cycle" in error.message and error.key == "extends"


def test_unknown_domain_can_never_fire(write_constitution: WriteConstitution) -> None:
    text = build(
        "name: org\n",
        "layers:\n",
        "  - id: dom\n",
        "    activation:\n",
        "      domains:\n",
        "        - healthcare\n",
        "        - medicine\n",
        "    principles:\n",
        PRINCIPLE.format(id="p.one"),
    )
    error = load_error(write_constitution(text))
    assert (error.line, error.key) == (7, "layers.0.activation.domains.1")
    assert "unknown domain `medicine`" in error.message and "never fire" in error.message


def test_complexity_above_one_can_never_fire(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    data = {
        "name": "org",
        "layers": [layer("c", principle("p"), activation={"min_complexity": 1.5})],
    }
    error = load_error(write_constitution(data))
    assert error.key == "layers.0.activation.min_complexity"
    assert "can never be reached" in error.message


def test_child_that_never_differs_from_parent(write_constitution: WriteConstitution) -> None:
    text = build(
        "name: org\n",
        "layers:\n",
        "  - id: high\n",
        "    activation: {min_risk: high}\n",
        "    principles:\n",
        PRINCIPLE.format(id="p.parent"),
        "        children:\n",
        "          - id: p.child\n",
        "            statement: S.\n",
        "            critique_request: C.\n",
        "            revision_request: R.\n",
        "            comparison_question: Q?\n",
        "            unfold: {min_risk: medium}\n",
    )
    error = load_error(write_constitution(text))
    assert (error.line, error.key) == (17, "layers.0.principles.0.children.0.unfold")
    assert "unfolds whenever its parent is active" in error.message


def test_child_without_unfold(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    data = {"name": "org", "layers": [layer("l", principle("p", children=[principle("c")]))]}
    error = load_error(write_constitution(data))
    assert error.key == "layers.0.principles.0.children.0"
    assert "needs `unfold`" in error.message


def test_unfold_on_top_level_principle(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    data = {"name": "org", "layers": [layer("l", principle("p", unfold={"min_risk": "high"}))]}
    error = load_error(write_constitution(data))
    assert error.key == "layers.0.principles.0.unfold"


def test_grandchild_must_be_stricter_than_child(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    grandchild = principle("g", unfold={"min_complexity": 0.3})
    child = principle("c", unfold={"min_complexity": 0.5}, children=[grandchild])
    data = {"name": "org", "layers": [layer("l", principle("p", children=[child]))]}
    error = load_error(write_constitution(data))
    assert error.key == "layers.0.principles.0.children.0.children.0.unfold"


def test_tighten_cannot_lower_severity(write_constitution: WriteConstitution) -> None:
    data = {
        "name": "org",
        "extends": "cai-2.0",
        "overrides": [
            {"principle": "honest.accuracy", "action": "tighten", "severity": "low", "reason": "x"}
        ],
    }
    error = load_error(write_constitution(data))
    assert error.key == "overrides.0.severity" and "use `action: relax`" in error.message


def test_relax_cannot_raise_severity(write_constitution: WriteConstitution) -> None:
    data = {
        "name": "org",
        "extends": "cai-2.0",
        "overrides": [
            {"principle": "helpful.clear", "action": "relax", "severity": "high", "reason": "x"}
        ],
    }
    error = load_error(write_constitution(data))
    assert error.key == "overrides.0.severity" and "use `action: tighten`" in error.message


@pytest.mark.parametrize("action", ["relax", "disable"])
def test_hard_limits_cannot_be_relaxed_or_disabled(
    write_constitution: WriteConstitution, action: str
) -> None:

    override = {"principle": "harmless.no_serious_harm", "action": action, "reason": "please"}
    if action == "relax":
        override["severity"] = "low"
    data = {"name": "org", "extends": "cai-2.0-creative-writing", "overrides": [override]}
    error = load_error(write_constitution(data))
    assert error.key == "overrides.0.action"
    assert "hard limit (locked by `cai-2.0`)" in error.message


def test_override_needs_a_reason(write_constitution: WriteConstitution) -> None:
    data = {
        "name": "org",
        "extends": "cai-2.0",
        "overrides": [{"principle": "helpful.clear", "action": "disable"}],
    }
    error = load_error(write_constitution(data))
    assert error.key == "overrides.0.reason" and "missing required key" in error.message


def test_override_that_changes_nothing(write_constitution: WriteConstitution) -> None:
    data = {
        "name": "org",
        "extends": "cai-2.0",
        "overrides": [{"principle": "helpful.clear", "action": "tighten", "reason": "x"}],
    }
    error = load_error(write_constitution(data))
    assert error.key == "overrides.0.action" and "changes nothing" in error.message


def test_disable_with_replacement_text(write_constitution: WriteConstitution) -> None:
    data = {
        "name": "org",
        "extends": "cai-2.0",
        "overrides": [
            {"principle": "helpful.clear", "action": "disable", "statement": "y", "reason": "x"}
        ],
    }
    error = load_error(write_constitution(data))
    assert error.key == "overrides.0.statement"


def test_two_overrides_of_one_principle(write_constitution: WriteConstitution) -> None:
    override = {"principle": "helpful.clear", "action": "disable", "reason": "x"}
    data = {"name": "org", "extends": "cai-2.0", "overrides": [override, override]}
    error = load_error(write_constitution(data))
    assert error.key == "overrides.1.principle" and "already overridden" in error.message


def test_override_of_principle_disabled_by_parent(write_constitution: WriteConstitution) -> None:
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
            "overrides": [
                {
                    "principle": "helpful.clear",
                    "action": "tighten",
                    "severity": "high",
                    "reason": "y",
                }
            ],
        },
        file="child.yaml",
    )
    error = load_error(child)
    assert error.file == str(child) and "already disabled by parent" in error.message


def test_layer_clashing_with_parent_needs_inherit(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    data = {"name": "org", "extends": "cai-2.0", "layers": [layer("base.honesty", principle("x"))]}
    error = load_error(write_constitution(data))
    assert error.key == "layers.0.id" and "inherit: replace" in error.message


def test_inherit_without_parent_layer(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    data = {
        "name": "org",
        "extends": "cai-2.0",
        "layers": [layer("org.new", principle("x"), inherit="extend")],
    }
    error = load_error(write_constitution(data))
    assert error.key == "layers.0.inherit" and "has no layer" in error.message


def test_inherit_without_extends(
    write_constitution: WriteConstitution, principle: Build, layer: Build
) -> None:
    data = {"name": "org", "layers": [layer("l", principle("x"), inherit="replace")]}
    error = load_error(write_constitution(data))
    assert error.key == "layers.0.inherit" and "needs a parent" in error.message


def test_not_a_mapping(write_constitution: WriteConstitution) -> None:
    error = load_error(write_constitution("- just\n- a list\n"))
    assert error.line == 1 and "YAML mapping" in error.message


def test_unknown_builtin_or_missing_file() -> None:
    with pytest.raises(ConfigError, match="not a built-in"):
        load_constitution("cai-9.9")


def test_python_built_constitution_is_checked_on_flatten(principle: Build, layer: Build) -> None:
    constitution = Constitution.model_validate(
        {"name": "inline", "layers": [layer("l", principle("a")), layer("m", principle("a"))]}
    )
    with pytest.raises(ConfigError) as info:
        constitution.flatten()
    assert info.value.key == "layers.1.principles.0.id"
    assert info.value.file == "<constitution inline>"
