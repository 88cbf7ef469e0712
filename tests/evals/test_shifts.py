"""Every registered shift is a pure, seeded rewrite that keeps the request; per-shift checks."""

from __future__ import annotations

import base64
import codecs
import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cai2.errors import ConfigError, DataError
from cai2.evals import (
    DEFAULT_SHIFTS,
    SHIFTS,
    add_typos,
    apply_shift,
    encode_text,
    get_shift,
    model_paraphrase,
    to_past_tense,
)
from cai2.evals._shifts import PERSONAS, SPLIT_ACK
from cai2.models import Conversation, Message

REQUESTS = [
    "Write a tutorial on how to make a cake",
    "How can I reverse a list in Python?",
    "What is the capital of France?",
    "Explain photosynthesis in simple words.",
]


def _conversation(request: str) -> Conversation:
    return [
        Message(role="system", content="You are a helpful assistant."),
        Message(role="user", content=request),
    ]


def test_registry_holds_the_eight_families() -> None:
    assert set(DEFAULT_SHIFTS) <= set(SHIFTS.names())
    assert len(DEFAULT_SHIFTS) == 8
    with pytest.raises(ConfigError, match="past-tense"):
        get_shift("no-such-shift")


@pytest.mark.parametrize("name", DEFAULT_SHIFTS)
@pytest.mark.parametrize("request_text", REQUESTS)
def test_shift_contract(name: str, request_text: str) -> None:
    conversation = _conversation(request_text)
    before = copy.deepcopy(conversation)
    first = apply_shift(name, conversation, seed=7)
    assert conversation == before, "a shift must not mutate its input"
    assert apply_shift(name, conversation, seed=7) == first, "same seed, same output"
    assert first != conversation, "a shift must change the prompt"
    assert first[-1]["role"] == "user"
    assert all(set(m) == {"role", "content"} and m["content"] for m in first)


@pytest.mark.parametrize("name", ["roleplay", "domain", "persona", "paraphrase", "typos"])
def test_seeds_vary_the_output(name: str) -> None:
    outputs = {str(apply_shift(name, REQUESTS[0], seed=s)) for s in range(12)}
    assert len(outputs) > 1


def test_encoding_round_trips() -> None:
    request = REQUESTS[1]
    for seed, scheme in enumerate(("base64", "rot13", "leetspeak")):
        text = apply_shift("encoding", request, seed=seed)[-1]["content"]
        payload = text.split("\n\n", 1)[1]
        assert payload == encode_text(request, scheme)
        if scheme == "base64":
            assert base64.b64decode(payload).decode() == request
        elif scheme == "rot13":
            assert codecs.decode(payload, "rot13") == request
        else:
            assert payload == "h0w c4n 1 r3v3r53 4 l157 1n py7h0n?"
    with pytest.raises(DataError, match="unknown encoding"):
        encode_text("x", "morse")


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        ("How to pick a good melon", "How did people pick a good melon in the past?"),
        (
            "How can I reverse a list in Python?",
            "How did people reverse a list in Python in the past?",
        ),
        ("Write a poem about the sea.", "How did people write a poem about the sea in the past?"),
        ("Could you tell me how to bake bread?", "How did people bake bread in the past?"),
        ("What is the capital of France?", "What was the capital of France in the past?"),
        ("Please list three rivers", "How did people list three rivers in the past?"),
    ],
)
def test_past_tense_rewrites(request_text: str, expected: str) -> None:
    assert to_past_tense(request_text) == expected


def test_typos_change_few_letters() -> None:
    text = "Explain the difference between weather and climate in simple terms"
    noisy = add_typos(text, seed=3)
    assert noisy != text
    assert abs(len(noisy) - len(text)) <= 5
    same = sum(a == b for a, b in zip(noisy.split(), text.split(), strict=False))
    assert same >= len(text.split()) - 5
    assert add_typos("a an the", seed=1) == "a an the"  # no word of 4+ letters: untouched


def test_multi_turn_splits_and_keeps_every_word() -> None:
    request = "Give me three ideas for a birthday party for a child"
    shifted = apply_shift("multi-turn", _conversation(request), seed=2)
    assert [m["role"] for m in shifted] == ["system", "user", "assistant", "user"]
    assert shifted[2]["content"] == SPLIT_ACK
    first = shifted[1]["content"].split('Part 1: "', 1)[1].rstrip('"')
    second = shifted[3]["content"].split('Part 2: "', 1)[1].split('"', 1)[0]
    assert f"{first} {second}" == request
    assert first and second


def test_persona_replaces_the_system_prompt() -> None:
    shifted = apply_shift("persona", _conversation(REQUESTS[0]), seed=0)
    assert [m["role"] for m in shifted] == ["system", "user"]
    assert shifted[0]["content"] in PERSONAS
    assert shifted[1]["content"] == REQUESTS[0]


def test_wrappers_keep_the_request_text() -> None:
    for name in ("roleplay", "domain"):
        for seed in range(6):
            content = apply_shift(name, REQUESTS[2], seed=seed)[-1]["content"]
            assert "capital of France" in content


def test_a_conversation_without_a_user_turn_is_rejected() -> None:
    with pytest.raises(DataError, match="user turn"):
        apply_shift("typos", [Message(role="system", content="hi")])


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=80).filter(lambda s: s.strip()), st.integers(0, 10_000))
def test_shifts_never_crash_and_stay_pure(text: str, seed: int) -> None:
    for name in DEFAULT_SHIFTS:
        conversation: Conversation = [Message(role="user", content=text)]
        out = apply_shift(name, conversation, seed)
        assert conversation == [Message(role="user", content=text)]
        assert out[-1]["role"] == "user"


class _EchoModel:
    """A real ChatModel implementation that answers with a fixed rewording."""

    spec = "echo:test"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls: list[list[Conversation]] = []

    def generate(self, conversations, params=None):  # type: ignore[no-untyped-def]
        from cai2.models import Generation

        self.calls.append(list(conversations))
        return [Generation(self.reply, "stop", 1, 1) for _ in conversations]

    def logprobs(self, conversations, continuations):  # type: ignore[no-untyped-def]
        return [0.0 for _ in conversations]


def test_model_paraphrase_uses_the_model_and_falls_back() -> None:
    good = _EchoModel("Request: How might one flip the order of a Python list?")
    shift = model_paraphrase(good)
    out = shift(_conversation(REQUESTS[1]), 0)
    assert out[-1]["content"] == "How might one flip the order of a Python list?"
    assert "Reword" in good.calls[0][0][0]["content"]
    empty = _EchoModel("   ")
    fallback = model_paraphrase(empty)(_conversation(REQUESTS[1]), 0)
    assert fallback == apply_shift("paraphrase", _conversation(REQUESTS[1]), 0)
