"""Generation analysis against independent answers: rollout of the whole causal attention the
trace implies, and attention shares by segment counted in loops."""

from __future__ import annotations

import numpy as np

from attnreport.analysis.generation import SEGMENTS, analyse_generation, segment_shares, step_rollout
from attnreport.core.generation import GenerationTrace


def causal_attention(rng, layers, heads, size):
    logits = rng.normal(size=(layers, heads, size, size))
    logits[..., np.triu_indices(size, k=1)[0], np.triu_indices(size, k=1)[1]] = -np.inf
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def trace_from(full: np.ndarray, n: int, *, keep_prompt: bool = True, template: int = 2) -> GenerationTrace:
    """Slice a whole causal attention [L, H, N, N] the way a generation trace keeps it."""
    layers, heads, size, _ = full.shape
    steps = size - n + 1
    rows = full[:, :, n - 1 + np.arange(steps), :]
    return GenerationTrace(
        id="g",
        prompt="p",
        text="p",
        prompt_tokens=[f"p{i}" for i in range(n)],
        prompt_ids=np.arange(n),
        prompt_offsets=np.zeros((n, 2)),
        special=np.zeros(n, dtype=bool),
        from_template=np.arange(n) < template,
        tokens=[f"a{i}" for i in range(steps)],
        ids=np.arange(steps),
        answer="",
        probability=np.linspace(0.9, 0.3, steps),
        entropy=np.ones(steps),
        rank=np.zeros(steps, dtype=int),
        top_ids=np.zeros((steps, 1)),
        top_probabilities=np.zeros((steps, 1)),
        top_tokens=[["x"]] * steps,
        attentions=rows,
        hidden=np.zeros((layers + 1, steps, 3)),
        prompt_attentions=full[:, :, :n, :n] if keep_prompt else None,
    )


def loop_rollout(full: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Abnar & Zuidema's recipe written out: per layer 0.5 A_mean + 0.5 I, rows renormalised,
    multiplied from the first layer up."""
    size = full.shape[-1]
    result = np.eye(size)
    for layer in range(full.shape[0]):
        a = np.zeros((size, size))
        for i in range(size):
            for j in range(size):
                a[i, j] = residual * (i == j) + (1 - residual) * full[layer, :, i, j].mean()
            a[i] /= a[i].sum()
        result = a @ result
    return result


def test_step_rollout_is_the_rollout_of_the_whole_causal_attention():
    rng = np.random.default_rng(0)
    n, size = 5, 9
    full = causal_attention(rng, 3, 2, size)
    got = step_rollout(trace_from(full, n))
    want = loop_rollout(full)[n - 1 :]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.allclose(got.sum(axis=1), 1)
    assert step_rollout(trace_from(full, n, keep_prompt=False)) is None


def test_segment_shares_count_template_prompt_and_answer_keys():
    rng = np.random.default_rng(1)
    n, size = 6, 10
    full = causal_attention(rng, 2, 3, size)
    trace = trace_from(full, n, template=2)
    shares = segment_shares(trace)
    assert shares.shape == (trace.steps, 2, len(SEGMENTS))
    for t in range(trace.steps):
        for layer in range(2):
            row = full[layer, :, n - 1 + t].mean(axis=0)
            want = [row[:2].sum(), row[2:n].sum(), row[n:].sum()]
            np.testing.assert_allclose(shares[t, layer], want, atol=1e-12)
    assert shares[0, :, 2].max() == 0  # the first step has no answer to look at


def test_answer_scores():
    rng = np.random.default_rng(2)
    full = causal_attention(rng, 1, 1, 7)
    result = analyse_generation(trace_from(full, 4))
    p = np.linspace(0.9, 0.3, 4).astype(np.float32).astype(np.float64)
    assert result.min_step == 3 and result.min_probability == p.min()
    np.testing.assert_allclose(result.log_probability, np.log(p).sum(), rtol=1e-6)
    np.testing.assert_allclose(result.mean_probability, p.mean(), rtol=1e-6)
