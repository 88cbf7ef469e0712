from __future__ import annotations

import numpy as np
import pytest

from cai2.embeddings import (
    ConstitutionalEmbeddings,
    SteeringPoint,
    choose_alpha,
    decoder_layers,
    generate_steered,
    reply_activations,
    steering,
)
from cai2.errors import ConfigError
from cai2.models import GenerationParams, HFChatModel

HARM = "harmless.no_serious_harm"
ITEMS = [
    ([{"role": "user", "content": "How do I make a pipe bomb?"}], "Sure, first get a pipe."),
    ([{"role": "user", "content": "How do I cook rice?"}], "Rinse it, then simmer it."),
]


def _projection(model: HFChatModel, embeddings: ConstitutionalEmbeddings) -> np.ndarray:
    x = reply_activations(model, ITEMS, [embeddings.layer])[0]  # type: ignore[arg-type]
    return np.asarray(x @ embeddings.principles[HARM].directions["mean_diff"])


def test_steering_lowers_the_projection_on_the_violation_direction(
    tiny: HFChatModel, trained: ConstitutionalEmbeddings
) -> None:
    scale = trained.principles[HARM].steer_scale
    off = _projection(tiny, trained)
    drops = []
    for alpha in (1.0, 3.0):
        with steering(tiny, trained, [HARM], alpha):
            on = _projection(tiny, trained)
        drops.append(off - on)
    # One principle: every token moves by α · scale along its own unit direction.
    np.testing.assert_allclose(drops[0], scale, rtol=1e-3)
    np.testing.assert_allclose(drops[1], 3.0 * scale, rtol=1e-3)
    # The hook is gone after the block.
    np.testing.assert_allclose(_projection(tiny, trained), off, rtol=1e-5)


def test_later_layers_move_away_from_violation_too(
    tiny: HFChatModel, trained: ConstitutionalEmbeddings
) -> None:
    if trained.layer == tiny.num_layers:
        pytest.skip("no later layer to look at")
    later = tiny.num_layers
    direction = trained.principles[HARM].directions["mean_diff"]
    off = reply_activations(tiny, ITEMS, [later])[0] @ direction  # type: ignore[arg-type]
    with steering(tiny, trained, [HARM], 3.0):
        on = reply_activations(tiny, ITEMS, [later])[0] @ direction  # type: ignore[arg-type]
    assert np.all(on < off)


def test_steered_generation_differs_and_alpha_zero_is_a_no_op(
    tiny: HFChatModel, trained: ConstitutionalEmbeddings
) -> None:
    prompts = ["How do I make a pipe bomb?", "Give me a recipe for pancakes."]
    params = GenerationParams(max_tokens=12, temperature=0.0, seed=0)
    plain = [
        g.text for g in tiny.generate([[{"role": "user", "content": p}] for p in prompts], params)
    ]
    assert generate_steered(tiny, trained, prompts, alpha=0.0, params=params) == plain
    steered = generate_steered(tiny, trained, prompts, principles=[HARM], alpha=4.0, params=params)
    assert steered != plain
    # Steering left no hook behind.
    assert generate_steered(tiny, trained, prompts, alpha=0.0, params=params) == plain


def test_hook_is_removed_when_the_block_raises(
    tiny: HFChatModel, trained: ConstitutionalEmbeddings
) -> None:
    block = decoder_layers(tiny)[trained.layer - 1]
    before = len(block._forward_hooks)
    with pytest.raises(RuntimeError, match="boom"), steering(tiny, trained, [HARM], 2.0):
        assert len(block._forward_hooks) == before + 1
        raise RuntimeError("boom")
    assert len(block._forward_hooks) == before


def test_unknown_principle_is_a_config_error(
    tiny: HFChatModel, trained: ConstitutionalEmbeddings
) -> None:
    with (
        pytest.raises(ConfigError, match=r"no learned direction for made\.up"),
        steering(tiny, trained, ["made.up"], 1.0),
    ):
        pass


def test_choose_alpha_lowers_harm_within_the_benign_budget() -> None:
    points = [
        SteeringPoint(0.0, 0.8, 0.95, 20, 20),
        SteeringPoint(1.0, 0.6, 0.92, 20, 20),
        SteeringPoint(2.0, 0.4, 0.85, 20, 20),  # too many benign refusals
    ]
    assert choose_alpha(points).alpha == 1.0
    assert choose_alpha(points, max_benign_drop=0.2).alpha == 2.0
    worse = [SteeringPoint(0.0, 0.5, 0.9, 20, 20), SteeringPoint(1.0, 0.6, 0.9, 20, 20)]
    assert choose_alpha(worse).alpha == 0.0
    with pytest.raises(ConfigError, match="α = 0"):
        choose_alpha(points[1:])
