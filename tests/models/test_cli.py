"""`cai2 models` and `cai2 chat`, run through the real CLI entry point."""

from __future__ import annotations

import io

import pytest

from cai2.cli import main
from cai2.models import GenerationParams, embedded_gguf_path, load_model
from cai2.models._embedded import EXPECTED_GGUF_SHA256


def test_models_lists_backends_and_the_embedded_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for backend in ("hf", "llamacpp", "openai"):
        assert backend in out
    assert embedded_gguf_path().name in out
    assert EXPECTED_GGUF_SHA256 in out
    assert "matches the pinned value" in out
    assert "converted model:" in out


def test_chat_one_shot_prints_the_reply(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--model", "hf:tiny", "--max-tokens", "6", "Hello there"]) == 0
    out = capsys.readouterr().out
    expected = load_model("hf:tiny").generate(
        [[{"role": "user", "content": "Hello there"}]], GenerationParams(max_tokens=6, seed=0)
    )[0]
    assert out == expected.text + "\n"


def test_chat_repl_keeps_history_until_exit(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello\n\nHow are you?\n/exit\nnot read\n"))
    assert main(["chat", "--model", "hf:tiny", "--max-tokens", "4"]) == 0
    out = capsys.readouterr().out
    model = load_model("hf:tiny")
    params = GenerationParams(max_tokens=4, seed=0)
    first = model.generate([[{"role": "user", "content": "Hello"}]], params)[0].text
    second = model.generate(
        [
            [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": first},
                {"role": "user", "content": "How are you?"},
            ]
        ],
        params,
    )[0].text
    assert out == f"{first}\n{second}\n"


def test_chat_ends_at_end_of_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Hi\n"))
    assert main(["chat", "--model", "hf:tiny", "--max-tokens", "3"]) == 0
    reply = load_model("hf:tiny").generate(
        [[{"role": "user", "content": "Hi"}]], GenerationParams(max_tokens=3, seed=0)
    )[0]
    assert capsys.readouterr().out == reply.text + "\n"


def test_chat_with_a_bad_spec_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--model", "nope:x", "Hi"]) == 2
    assert "unknown backend `nope`" in capsys.readouterr().err
