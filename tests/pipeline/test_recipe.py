"""Recipe validation: every mistake names the file, the line and the key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cai2.cli import main
from cai2.errors import ConfigError, DataError
from cai2.models import DEFAULT_GENERATION_BATCH_SIZE, DEFAULT_GENERATION_SPEC
from cai2.pipeline import (
    GenerateConfig,
    Recipe,
    StageEntry,
    builtin_prompt_sets,
    load_prompts,
    load_recipe,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def recipe_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    return info.value


def test_valid_recipe_fills_defaults_and_hashes_each_stage(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: smoke
        stages:
          - stage: generate
            config:
              limit: 3
              params: {max_tokens: 8}
          - stage: generate
            id: second
        """,
    )
    loaded = load_recipe(path)
    assert loaded.recipe.model == DEFAULT_GENERATION_SPEC
    assert [s.id for s in loaded.stages] == ["generate", "second"]
    first = loaded.stages[0].config
    assert isinstance(first, GenerateConfig)
    assert first.limit == 3 and first.params.max_tokens == 8
    assert first.batch_size == DEFAULT_GENERATION_BATCH_SIZE
    assert loaded.stages[0].config_hash != loaded.stages[1].config_hash
    resolved = loaded.resolved_config()
    assert resolved["stages"][1]["config"]["prompts"] == "default"
    assert loaded.base_dir == tmp_path.resolve()


def test_typo_in_stage_config_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: smoke
        model: hf:tiny
        stages:
          - stage: generate
            config:
              prompts: default
              batch_sise: 4
        """,
    )
    error = recipe_error(path)
    assert (error.file, error.line, error.key) == (str(path), 7, "stages.0.config.batch_sise")
    assert str(error) == f"{path}:7 at `stages.0.config.batch_sise`: unknown key `batch_sise`"


def test_wrong_type_in_nested_params(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: smoke
        stages:
          - stage: generate
          - stage: generate
            id: again
            config:
              params:
                max_tokens: lots
        """,
    )
    error = recipe_error(path)
    assert (error.line, error.key) == (8, "stages.1.config.params.max_tokens")
    assert "valid integer" in error.message


def test_unknown_stage_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: smoke
        stages:
          - stage: generate
          - stage: genrate
        """,
    )
    error = recipe_error(path)
    assert (error.line, error.key) == (4, "stages.1.stage")
    known = "known stages: evaluate, generate, pretrain, redteam, rl, sl"
    assert f"unknown stage `genrate`; {known}" in error.message


def test_top_level_mistakes(tmp_path: Path) -> None:
    typo = recipe_error(write(tmp_path, "name: x\nstages: [{stage: generate}]\nmodle: hf:tiny\n"))
    assert (typo.line, typo.key, typo.message) == (3, "modle", "unknown key `modle`")
    missing = recipe_error(write(tmp_path, "name: x\nmodel: hf:tiny\n"))
    assert missing.key == "stages" and "missing required key" in missing.message
    empty = recipe_error(write(tmp_path, "name: x\nstages: []\n"))
    assert empty.key == "stages" and empty.line == 2
    bad_name = recipe_error(write(tmp_path, "name: ../up\nstages: [{stage: generate}]\n"))
    assert (bad_name.line, bad_name.key) == (1, "name")
    not_mapping = recipe_error(write(tmp_path, "- just\n- a list\n"))
    assert not_mapping.line == 1 and "must be a mapping" in not_mapping.message


def test_duplicate_stage_ids(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: smoke
        stages:
          - stage: generate
          - stage: generate
        """,
    )
    error = recipe_error(path)
    assert (error.line, error.key) == (4, "stages.1")
    assert "distinct `id`" in error.message


def test_recipe_built_in_code_is_validated_too() -> None:
    recipe = Recipe(name="code", stages=[StageEntry(stage="generate", config={"limit": 0})])
    with pytest.raises(ConfigError) as info:
        load_recipe(recipe)
    assert info.value.key == "stages.0.config.limit" and info.value.file is None


def test_cli_bad_recipe_exits_2_with_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "name: x\nstages:\n  - stage: generate\n    config: {batch_size: -1}\n")
    assert main(["run", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path}:4 at `stages.0.config.batch_size`" in err
    assert err.count("\n") == 0
    assert main(["run", str(tmp_path / "absent.yaml")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_default_recipe_is_valid() -> None:
    loaded = load_recipe(REPO / "recipes" / "default.yaml")
    assert loaded.recipe.model == "hf:smollm2-135m"
    assert [s.kind for s in loaded.stages] == ["generate"]


def test_builtin_prompt_set() -> None:
    assert "default" in builtin_prompt_sets()
    items = load_prompts("default")
    assert len(items) == 40
    assert sum(item.kind == "helpful" for item in items) == 20
    assert sum(item.kind == "harmful" for item in items) == 20
    assert len({item.id for item in items}) == 40


def test_prompt_files_relative_to_base_and_checked(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('{"id": 1, "prompt": "Hi"}\n\n{"id": "b", "prompt": "Yo"}\n')
    items = load_prompts("p.jsonl", tmp_path)
    assert [(i.id, i.prompt, i.kind) for i in items] == [("1", "Hi", "other"), ("b", "Yo", "other")]

    cases = {
        '{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n': ":2: duplicate id `1`",
        '{"id": 1}\n': ":1: `prompt` must be a non-empty string",
        '{"prompt": "x"}\n': ":1: `id` must be",
        '{"id": 1, "prompt": "x", "kind": "evil"}\n': ":1: `kind` must be",
        '{"id": 1, "prompt": "x"}\n{oops\n': ":2: not valid JSON",
        "\n": "no prompts found",
    }
    for text, message in cases.items():
        (tmp_path / "bad.jsonl").write_text(text)
        with pytest.raises(DataError, match=message):
            load_prompts("bad.jsonl", tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_prompts("missing.jsonl", tmp_path)
    with pytest.raises(DataError, match="unknown built-in prompt set `nope`; known: default"):
        load_prompts("nope")
