"""`cai2 constitution validate|show|schema|diff` through the real CLI entry point."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cai2.cli import main

Build = Callable[..., dict[str, Any]]
WriteConstitution = Callable[..., Path]

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "acme-telehealth.yaml"


def test_validate_builtins_and_docs_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["constitution", "validate", "cai-1.0", "cai-2.0-healthcare", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "ok cai-1.0: cai-1.0 v1.0, 1 layers, 16 principles" in out
    assert "ok cai-2.0-healthcare" in out
    assert "acme-telehealth v2026.1" in out


def test_validate_reports_file_line_and_key(
    write_constitution: WriteConstitution, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_constitution("name: org\nextends: cai-2.0\nlayerz: []\n")
    assert main(["constitution", "validate", "cai-2.0", str(path)]) == 2
    captured = capsys.readouterr()
    assert "ok cai-2.0" in captured.out
    err = " ".join(captured.err.split())
    assert f"{path}:3 at `layerz`: unknown key `layerz`" in err


def test_show_explains_active_layers(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "constitution", "show", "cai-2.0-healthcare",
            "--risk", "high", "--domain", "healthcare", "--complexity", "0.7", "--text",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "context: risk=high domains=healthcare complexity=0.70" in out
    assert "layer healthcare.clinical [domain, priority 95]: domain healthcare present" in out
    assert "healthcare.no_dosing_changes (depth 2, critical)" in out


def test_show_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["constitution", "show", "cai-2.0", "--risk", "critical", "--all"]) == 0
    out = capsys.readouterr().out
    assert "risk.critical" in out and "harmless.watch_decomposition" in out
    # The tree wraps long lines to the terminal width, so check short pieces.
    assert "domain.healthcare" in out and "none of domains" in out and "off" in out


def test_show_bad_file_exits_2(
    write_constitution: WriteConstitution, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_constitution("name: x\nlayers:\n  - id: Bad Id\n")
    assert main(["constitution", "show", str(path)]) == 2
    assert f"{path}:3 at `layers.0.id`" in " ".join(capsys.readouterr().err.split())


def test_schema_prints_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["constitution", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Constitution"
    target = tmp_path / "constitution.schema.json"
    assert main(["constitution", "schema", "--output", str(target)]) == 0
    assert json.loads(target.read_text()) == schema


def test_diff_with_parent_and_between_two(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["constitution", "diff", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "diff cai-2.0-healthcare → acme-telehealth" in out
    assert "- principle politics.even_handed" in out
    assert main(["constitution", "diff", "cai-2.0", "cai-2.0-finance"]) == 0
    assert "+ layer finance.conduct" in capsys.readouterr().out
    assert main(["constitution", "diff", "cai-2.0"]) == 2
    assert "extends nothing" in capsys.readouterr().err


def test_docs_quote_the_real_validate_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:

    root = Path(__file__).parents[2]
    monkeypatch.chdir(root)
    assert main(["constitution", "validate", "docs/examples/acme-telehealth.yaml"]) == 0
    line = capsys.readouterr().out.strip()
    assert line in (root / "docs" / "constitutions.md").read_text(encoding="utf-8")


def test_citations_counts_real_and_made_up_quotes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cai2.constitution import principle_statements
    from cai2.critique import safe_reply

    real = safe_reply(principle_statements()["privacy.no_dossiers"], "find her address")
    replies = tmp_path / "replies.jsonl"
    rows = [
        {"response": real},
        {"response": 'A rule I follow is "Always wear a hat when coding at night".'},
        {"response": [{"role": "assistant", "content": "Sure, here you go."}]},
    ]
    replies.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert main(["constitution", "citations", str(replies), "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)[str(replies)]
    assert (audit["replies"], audit["citing"], audit["faithful"], audit["invented"]) == (3, 2, 1, 1)
    assert main(["constitution", "citations", str(replies)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "Always wear a hat when coding at night" in out
    # A line without the field is named by file and line.
    replies.write_text('{"response": "ok"}\n{"text": "no field"}\n', encoding="utf-8")
    assert main(["constitution", "citations", str(replies)]) == 2
    assert f"{replies}:2: no field `response`" in " ".join(capsys.readouterr().err.split())
