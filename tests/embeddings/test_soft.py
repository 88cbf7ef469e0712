"""Soft-prompt principle embeddings (prompt tuning) on the tiny model: train, use, CLI, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai2.cli import build_app
from cai2.embeddings import (
    SoftPromptSettings,
    load_examples,
    own_answer_rows,
    soft_prompt_rows,
    soft_prompted,
    split_examples,
    train_soft_prompt,
)
from cai2.errors import DataError, ModelError
from cai2.models import GenerationParams, HFChatModel, load_model
from cai2.models._embedded import tiny_model_dir

CRIME = "harmless.no_crime_facilitation"
STATEMENTS = {CRIME: "Do not help anyone commit a crime."}
PROMPTS = [
    [{"role": "user", "content": "How do I pick a lock?"}],
    [{"role": "user", "content": "Write a limerick about a cat who learns to code in Rust."}],
]
GREEDY = GenerationParams(max_tokens=12, temperature=0.0, seed=0)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    train = split_examples(load_examples(principles=[CRIME]))["train"]
    result = train_soft_prompt(
        tiny_model_dir(),
        train,
        tmp_path_factory.mktemp("soft"),
        statements=STATEMENTS,
        constitution="cai-2.0",
        settings=SoftPromptSettings(virtual_tokens=4, epochs=3, batch_size=4),
    )
    # Trained on the compliant replies only, the loss falls and the vectors move.
    assert result.examples == len([e for e in train if not e.violates]) > 0
    assert result.steps > 3 and result.changed
    assert result.losses[-1] < result.losses[0]
    return result.output


def test_training_writes_a_peft_adapter_with_its_provenance(adapter: Path) -> None:
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "adapter_model.safetensors").is_file()
    meta = json.loads((adapter / "soft_prompt.json").read_text())
    assert meta["principles"] == [CRIME] and meta["constitution"] == "cai-2.0"
    assert meta["virtual_tokens"] == 4 and meta["base_model"] == str(tiny_model_dir())
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING" and config["num_virtual_tokens"] == 4


def test_the_soft_prompt_changes_generation_and_is_removed_after(adapter: Path) -> None:
    model = load_model("hf:tiny", batch_size=2)
    assert isinstance(model, HFChatModel)
    before = [g.text for g in model.generate(PROMPTS, GREEDY)]
    base = model.model
    with soft_prompted(model, adapter) as meta:
        assert meta["principles"] == [CRIME]
        assert model.model is not base
        tuned = [g.text for g in model.generate(PROMPTS, GREEDY)]
    assert model.model is base
    assert tuned != before
    assert [g.text for g in model.generate(PROMPTS, GREEDY)] == before


def test_rows_take_only_compliant_replies_of_the_chosen_principles() -> None:
    examples = load_examples()
    rows = soft_prompt_rows(examples, [CRIME])
    compliant = [e for e in examples if e.principle == CRIME and not e.violates]
    assert len(rows) == len(compliant)
    assert rows[0]["completion"][0]["content"] == compliant[0].response
    with pytest.raises(DataError, match="no compliant examples"):
        soft_prompt_rows([e for e in examples if e.violates], [CRIME])


def test_bad_adapters_and_models_get_clear_errors(tmp_path: Path, adapter: Path) -> None:
    model = load_model("hf:tiny", batch_size=2)
    with (
        pytest.raises(DataError, match="not a soft-prompt adapter"),
        soft_prompted(model, tmp_path),
    ):
        pass

    class Remote:
        spec = "openai:http://localhost#m"

    with (
        pytest.raises(ModelError, match="local transformers model"),
        soft_prompted(Remote(), adapter),
    ):
        pass


def test_cli_trains_then_compares_replies(tmp_path: Path) -> None:
    runner = CliRunner()
    app = build_app(["cai2.embeddings._cli"])
    out = tmp_path / "soft"
    result = runner.invoke(
        app,
        [
            "embed", "soft-train", "--model", "hf:tiny", "--principle", CRIME,
            "--virtual-tokens", "4", "--epochs", "1", "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "compliant examples" in result.output and (out / "adapter").is_dir()
    result = runner.invoke(
        app,
        ["embed", "soft", str(out / "adapter"), "--prompt", "Hello there", "--max-tokens", "6",
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["principles"] == [CRIME]
    assert [r["prompt"] for r in payload["replies"]] == ["Hello there"]
    assert set(payload["replies"][0]) == {"prompt", "off", "soft"}


def test_own_answers_are_mixed_into_training(tmp_path: Path) -> None:
    model = load_model("hf:tiny", batch_size=2)
    rows = own_answer_rows(model, ["Name a fruit.", "Say hello."], max_tokens=6)
    assert [r["prompt"][0]["content"] for r in rows] == ["Name a fruit.", "Say hello."]
    replies = [g.text.strip() for g in model.generate([r["prompt"] for r in rows], GREEDY)]
    # The completions are the model's own greedy replies (a prefix of a longer greedy reply).
    assert all(
        reply.startswith(r["completion"][0]["content"])
        for r, reply in zip(rows, replies, strict=True)
    )
    train = split_examples(load_examples(principles=[CRIME]))["train"]
    result = train_soft_prompt(
        tiny_model_dir(),
        train,
        tmp_path,
        statements=STATEMENTS,
        constitution="cai-2.0",
        settings=SoftPromptSettings(virtual_tokens=2, epochs=1, batch_size=8),
        extra_rows=rows,
    )
    meta = json.loads((result.output / "soft_prompt.json").read_text())
    assert meta["extra_examples"] == 2
    assert result.examples == meta["principle_examples"] + 2
