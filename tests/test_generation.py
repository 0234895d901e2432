"""`GenerationTrace`: shapes checked with messages that name them, and a lossless round trip."""

from __future__ import annotations

import numpy as np
import pytest

from attnreport.core.generation import GenerationTrace


def make(n=4, t=3, layers=2, heads=2, d=5, k=3, *, lens=True, prompt_attention=True) -> GenerationTrace:
    rng = np.random.default_rng(0)
    rows = rng.random((layers, heads, t, n + t - 1))
    for s in range(t):
        rows[:, :, s, n + s :] = 0  # a step sees the prompt and the answer before it
    rows /= rows.sum(axis=-1, keepdims=True)
    return GenerationTrace(
        id="q1",
        prompt="where is <b>it</b>",
        text="<|user|>where is <b>it</b>",
        prompt_tokens=[f"p{i}" for i in range(n)],
        prompt_ids=np.arange(n),
        prompt_offsets=[(0, 0)] + [(i, i + 1) for i in range(n - 1)],
        special=[True] + [False] * (n - 1),
        from_template=[True] + [False] * (n - 1),
        tokens=[f"a{i}" for i in range(t)],
        ids=np.arange(t) + 10,
        answer="a0a1a2"[: 2 * t],
        probability=rng.random(t),
        entropy=rng.random(t),
        rank=np.zeros(t, dtype=int),
        top_ids=rng.integers(0, 50, (t, k)),
        top_probabilities=rng.random((t, k)),
        top_tokens=[[f"x{j}" for j in range(k)] for _ in range(t)],
        attentions=rows,
        hidden=rng.standard_normal((layers + 1, t, d)),
        prompt_attentions=rng.random((layers, heads, n, n)) if prompt_attention else None,
        lens_probability=rng.random((layers + 1, t)) if lens else None,
        lens_rank=rng.integers(0, 9, (layers + 1, t)) if lens else None,
        lens_top_ids=rng.integers(0, 50, (layers + 1, t, k)) if lens else None,
        lens_top_probabilities=rng.random((layers + 1, t, k)) if lens else None,
        lens_top_tokens=[[[f"y{j}" for j in range(k)]] * t] * (layers + 1) if lens else None,
        stop_reason="eos",
        template="chatml",
    )


@pytest.mark.parametrize("lens", [True, False])
def test_round_trip_keeps_every_field(lens):
    g = make(lens=lens, prompt_attention=lens)
    back = GenerationTrace.from_bytes(g.to_bytes())
    for name, value in vars(g).items():
        other = getattr(back, name)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(other, value)
            assert other.dtype == value.dtype, name
        else:
            assert other == value, name
    assert (back.n_prompt, back.steps, back.layers, back.heads) == (4, 3, 2, 2)


def test_shapes_are_checked_with_both_sizes_named():
    g = make()
    with pytest.raises(ValueError, match=r"attentions must be \[L, H, 3, 6\]"):
        GenerationTrace(**{**vars(g), "attentions": g.attentions[..., :-1]})
    with pytest.raises(ValueError, match="probability has 2 entries for 3 tokens"):
        GenerationTrace(**{**vars(g), "probability": g.probability[:2]})
    with pytest.raises(ValueError, match="stop_reason 'tired'"):
        GenerationTrace(**{**vars(g), "stop_reason": "tired"})
