from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field

from cai2.config import StrictModel, YamlDocument, load_yaml_model
from cai2.errors import ConfigError


class Inner(StrictModel):
    batch_size: int = Field(8, description="items per batch")
    name: str = Field(description="a name")


class Outer(StrictModel):
    title: str = Field("x", description="title")
    items: list[Inner] = Field(default_factory=list, description="items")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_valid_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "title: t\nitems:\n  - name: a\n  - name: b\n    batch_size: 3\n")
    cfg = load_yaml_model(path, Outer)
    assert [i.name for i in cfg.items] == ["a", "b"]
    assert cfg.items[1].batch_size == 3


def test_wrong_type_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "title: t\nitems:\n  - name: a\n  - name: b\n    batch_size: many\n")
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, Outer)
    err = info.value
    assert err.file == str(path)
    assert err.line == 5
    assert err.key == "items.1.batch_size"
    assert "integer" in str(err)
    assert str(err).startswith(f"{path}:5 at `items.1.batch_size`")


def test_unknown_key_points_at_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "title: t\nitems:\n  - name: a\n    batch_sise: 3\n")
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, Outer)
    assert info.value.line == 4
    assert info.value.key == "items.0.batch_sise"
    assert "unknown key `batch_sise`" in str(info.value)


def test_missing_key_points_at_the_parent(tmp_path: Path) -> None:
    path = write(tmp_path, "title: t\nitems:\n  - batch_size: 2\n")
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, Outer)
    assert info.value.line == 3
    assert info.value.key == "items.0.name"
    assert "missing required key `name`" in str(info.value)


def test_malformed_yaml_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path, "title: t\nitems: [\n  - name: a\n")
    with pytest.raises(ConfigError) as info:
        load_yaml_model(path, Outer)
    assert "malformed YAML" in str(info.value)
    assert info.value.line is not None and info.value.line >= 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml_model(tmp_path / "nope.yaml", Outer)


def test_validate_under_root_reports_full_path(tmp_path: Path) -> None:
    doc = YamlDocument("stages:\n  - stage: g\n    config:\n      batch_size: x\n", file="r.yaml")
    with pytest.raises(ConfigError) as info:
        doc.validate(Inner, root=("stages", 0, "config"))
    assert info.value.key == "stages.0.config.batch_size"
    assert info.value.line == 4


@given(
    st.dictionaries(
        st.text("abcdefgh", min_size=1, max_size=6),
        st.one_of(st.integers(), st.text("xyz ", max_size=5), st.booleans()),
        max_size=6,
    )
)
def test_every_top_level_key_has_its_line(mapping: dict[str, object]) -> None:
    import yaml

    text = yaml.safe_dump(mapping, sort_keys=True)
    doc = YamlDocument(text)
    lines = text.splitlines()
    for key in mapping:
        line = doc.line_of((key,))
        assert line is not None
        assert lines[line - 1].lstrip("'\"").startswith(key)
