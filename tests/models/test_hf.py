"""The hf backend on the tiny random-weight model: batching, stops, seeds, scores, activations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cai2.errors import ConfigError, DataError, ModelError
from cai2.models import (
    BACKENDS,
    ChatModel,
    Conversation,
    GenerationParams,
    LocalChatModel,
    load_model,
    tiny_model_dir,
)
from cai2.models._hf import HFChatModel, HFOptions

CONVERSATIONS: list[Conversation] = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "Write a long and detailed story about a dragon and a knight."}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name three colours."},
    ],
    [{"role": "user", "content": "What is two plus two?"}],
    [
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke about cats, please."},
    ],
]


def test_tiny_model_follows_the_local_model_protocol(tiny_model: HFChatModel) -> None:
    assert isinstance(tiny_model, ChatModel)
    assert isinstance(tiny_model, LocalChatModel)
    assert tiny_model.spec == "hf:tiny"
    assert tiny_model.hidden_size == 64
    assert tiny_model.num_layers == 2
    # Training code gets the plain transformers objects.
    assert tiny_model.model.config.hidden_size == 64
    assert tiny_model.tokenizer.chat_template


def test_batched_greedy_generation_matches_one_by_one(tiny_model: HFChatModel) -> None:
    params = GenerationParams(max_tokens=12)
    one_by_one = HFChatModel(tiny_model_dir(), options=HFOptions(batch_size=1))
    batched = tiny_model.generate(CONVERSATIONS, params)
    single = one_by_one.generate(CONVERSATIONS, params)
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.completion_tokens for g in batched] == [g.completion_tokens for g in single]
    # Prompts differ in length, so the batch was padded; the prompt counts exclude the padding.
    prompt_tokens = [g.prompt_tokens for g in batched]
    assert len(set(prompt_tokens)) == len(CONVERSATIONS)
    expected = [
        len(
            tiny_model.tokenizer(tiny_model.format_chat(c, add_generation_prompt=True))["input_ids"]
        )
        for c in CONVERSATIONS
    ]
    assert prompt_tokens == expected


def test_max_tokens_bounds_the_reply(tiny_model: HFChatModel) -> None:
    generations = tiny_model.generate(CONVERSATIONS, GenerationParams(max_tokens=5))
    for generation in generations:
        assert 1 <= generation.completion_tokens <= 5
        if generation.finish_reason == "length":
            assert generation.completion_tokens == 5


def test_stop_string_cuts_the_reply(tiny_model: HFChatModel) -> None:
    conversation = CONVERSATIONS[1]
    free = tiny_model.generate([conversation], GenerationParams(max_tokens=24))[0]
    assert len(free.text) > 12, free
    stop = free.text[8:11]
    expected = free.text[: free.text.find(stop)]
    stopped = tiny_model.generate([conversation], GenerationParams(max_tokens=24, stop=[stop]))[0]
    assert stopped.text == expected
    assert stop not in stopped.text
    assert stopped.finish_reason == "stop"
    assert stopped.completion_tokens <= free.completion_tokens


def test_sampling_is_reproducible_under_a_seed(tiny_model: HFChatModel) -> None:
    def sample(seed: int) -> list[str]:
        params = GenerationParams(max_tokens=10, temperature=1.0, top_p=0.95, seed=seed)
        return [g.text for g in tiny_model.generate(CONVERSATIONS[:3], params)]

    first, again, other = sample(1), sample(1), sample(2)
    assert first == again
    assert first != other
    greedy = [
        g.text for g in tiny_model.generate(CONVERSATIONS[:3], GenerationParams(max_tokens=10))
    ]
    assert first != greedy


def test_logprobs_rank_the_greedy_continuation_first(tiny_model: HFChatModel) -> None:
    conversations = CONVERSATIONS[:3]
    greedy = [g.text for g in tiny_model.generate(conversations, GenerationParams(max_tokens=8))]
    # The same tokens in reverse order: equally long, but not what the model predicts.
    scrambled = []
    for text in greedy:
        ids = tiny_model.tokenizer(text, add_special_tokens=False)["input_ids"]
        scrambled.append(tiny_model.tokenizer.decode(ids[::-1]))
    likely = tiny_model.logprobs(conversations, greedy)
    unlikely = tiny_model.logprobs(conversations, scrambled)
    assert len(likely) == len(conversations)
    assert all(value < 0 for value in likely)
    for high, low in zip(likely, unlikely, strict=True):
        assert high > low


def test_logprobs_do_not_depend_on_batching(tiny_model: HFChatModel) -> None:
    continuations = ["Sure, here it is.", "No.", "Red, green and blue."]
    batched = tiny_model.logprobs(CONVERSATIONS[:3], continuations)
    alone = [
        tiny_model.logprobs([c], [t])[0]
        for c, t in zip(CONVERSATIONS[:3], continuations, strict=True)
    ]
    assert batched == pytest.approx(alone, abs=1e-3)
    # A continuation is scored token by token, so extending it can only lower the sum.
    longer = tiny_model.logprobs(CONVERSATIONS[:1], ["Sure, here it is. And more words follow."])
    assert longer[0] < batched[0]


def test_logprobs_edge_cases(tiny_model: HFChatModel) -> None:
    assert tiny_model.logprobs(CONVERSATIONS[:1], [""]) == [0.0]
    assert tiny_model.logprobs([], []) == []
    with pytest.raises(DataError, match="2 conversations and 1 continuations"):
        tiny_model.logprobs(CONVERSATIONS[:2], ["x"])


def test_hidden_states_shapes_and_layers(tiny_model: HFChatModel) -> None:
    last = tiny_model.hidden_states(CONVERSATIONS, layer=-1)
    first = tiny_model.hidden_states(CONVERSATIONS, layer=0)
    assert last.shape == (len(CONVERSATIONS), 64)
    assert last.dtype == np.float32
    assert np.isfinite(last).all()
    assert not np.allclose(last, first)
    assert np.allclose(tiny_model.hidden_states(CONVERSATIONS, layer=2), last)
    # Padding does not leak into the mean: a conversation alone gives the same vector.
    alone = tiny_model.hidden_states(CONVERSATIONS[1:2], layer=-1)
    assert np.allclose(alone[0], last[1], atol=1e-4)
    assert tiny_model.hidden_states([], layer=-1).shape == (0, 64)
    with pytest.raises(ConfigError, match="out of range"):
        tiny_model.hidden_states(CONVERSATIONS, layer=3)


def test_progress_callback_reports_each_batch() -> None:
    calls: list[tuple[int, int]] = []
    model = load_model(
        "hf:tiny", batch_size=2, progress=lambda done, total: calls.append((done, total))
    )
    model.generate(CONVERSATIONS, GenerationParams(max_tokens=2))
    assert calls == [(2, 5), (4, 5), (5, 5)]


def test_spec_and_option_errors(tmp_path: Path) -> None:
    assert {"hf", "llamacpp", "openai"} <= set(BACKENDS.names())
    with pytest.raises(ConfigError, match="backend:target"):
        load_model("smollm2")
    with pytest.raises(ConfigError, match="unknown backend `nope`"):
        load_model("nope:model")
    with pytest.raises(ConfigError, match="not a model directory"):
        load_model(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(ConfigError, match="unknown key `batch`"):
        load_model("hf:tiny", batch=3)
    with pytest.raises(ConfigError, match="batch_size"):
        load_model("hf:tiny", batch_size=0)


def test_pickle_weights_are_refused(tmp_path: Path) -> None:
    import shutil

    import torch

    source = tiny_model_dir()
    for file in source.iterdir():
        if file.suffix != ".safetensors":
            shutil.copy(file, tmp_path / file.name)
    model = HFChatModel(source)
    torch.save(model.model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelError, match="only safetensors"):
        load_model(f"hf:{tmp_path}")
