from __future__ import annotations

from pathlib import Path

import pytest

from cai2.context import RiskTier
from cai2.errors import DataError
from cai2.oversight import default_oversight_config, read_oversight_items


def test_reads_prompts_and_conversations(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        '{"prompt": "p", "response": "r"}\n\n'
        '{"id": "x", "conversation": [{"role": "user", "content": "c"}], "response": "s", '
        '"risk": "critical"}\n',
        encoding="utf-8",
    )
    first, second = read_oversight_items(path)
    assert (first.id, first.risk, first.conversation) == (
        "1",
        RiskTier.medium,
        [{"role": "user", "content": "p"}],
    )
    assert (second.id, second.risk, second.response) == ("x", RiskTier.critical, "s")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", ":1: not valid JSON"),
        ("[1]", ":1: expected a JSON object"),
        ('{"prompt": "p", "response": "r", "extra": 1}', "unknown key"),
        ('{"response": "r"}', "exactly one of `prompt` or `conversation`"),
        ('{"prompt": "p", "response": 3}', ":1 at `response`"),
        ('{"prompt": "p", "response": "r", "risk": "huge"}', ":1 at `risk`"),
        ('{"conversation": "x", "response": "r"}', ":1 at `conversation`"),
        ('{"conversation": [{"role": "user"}], "response": "r"}', "list of {'role', 'content'}"),
    ],
)
def test_bad_lines_name_file_line_and_key(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("{", r"\{")):
        read_oversight_items(path)


def test_duplicate_ids_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    path.write_text('{"id": "a", "prompt": "p", "response": "r"}\n' * 2, encoding="utf-8")
    with pytest.raises(DataError, match="already used on line 1"):
        read_oversight_items(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="no items"):
        read_oversight_items(empty)
    with pytest.raises(DataError, match="file not found"):
        read_oversight_items(tmp_path / "missing.jsonl")


def test_default_hierarchy_is_refusal_then_minilm_head() -> None:
    config = default_oversight_config()
    assert [level.judge for level in config.levels] == ["refusal", "embedding-head"]
    assert config.levels[0].sampling is None and config.levels[1].sampling is not None
