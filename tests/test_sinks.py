"""Attention sinks (`analysis.sinks`) and the views that see past them (`analysis.attention_views`):
the rule against a brute-force reading of it, a hand-set model with a planted sink whose value
carries nothing, and the copy circuit, whose copied source must still come first."""

from __future__ import annotations

import numpy as np
import pytest

from attnreport.analysis.attention_views import VIEWS, view_rollout, view_rows
from attnreport.analysis.generation import analyse_generation, full_attention, looked_at
from attnreport.analysis.sinks import SINK_MAJORITY, SINK_WEIGHT, find_sinks
from attnreport.trace import GenerationOptions, Generator


def brute_force_sinks(rows: np.ndarray, n: int) -> list[list[int]]:
    """The rule read literally: for each layer and key, count the (head, step) pairs that can see
    the key and those that give it at least SINK_WEIGHT."""
    layers, heads, steps, keys = rows.shape
    found = []
    for layer in range(layers):
        sinks = []
        for key in range(keys):
            seen = strong = 0
            for head in range(heads):
                for step in range(steps):
                    if key <= n - 1 + step:
                        seen += 1
                        strong += rows[layer, head, step, key] >= SINK_WEIGHT
            if seen and strong / seen >= SINK_MAJORITY:
                sinks.append(key)
        found.append(sinks)
    return found


def random_rows(rng, layers=3, heads=4, n=6, steps=4, sink=None):
    keys = n + steps - 1
    rows = np.zeros((layers, heads, steps, keys))
    for t in range(steps):
        logits = rng.normal(size=(layers, heads, n + t))
        if sink is not None:
            logits[..., sink] += rng.choice([0.0, 4.0], size=(layers, heads), p=[0.3, 0.7])
        rows[:, :, t, : n + t] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return rows


@pytest.mark.parametrize("seed", range(6))
def test_the_rule_finds_what_a_literal_reading_of_it_finds(seed):
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, sink=0 if seed % 2 else 2)
    sinks = find_sinks(rows, 6)
    assert sinks.layers == brute_force_sinks(rows, 6)
    # the share: the weight on every sink position (a sink in any layer), mean of heads, per step
    positions = sorted({p for layer in sinks.layers for p in layer})
    assert sinks.positions == positions
    for layer in range(rows.shape[0]):
        want = rows[layer][:, :, positions].sum(-1).mean(0) if positions else np.zeros(rows.shape[2])
        np.testing.assert_allclose(sinks.share[layer], want, atol=1e-12)


def test_a_key_one_step_reads_strongly_is_no_sink():
    """A copied source takes all of one step's attention, in every head: still one query of many."""
    rows = np.zeros((1, 2, 4, 9))
    for t in range(4):
        rows[0, :, t, : 6 + t] = 1 / (6 + t)
    rows[0, :, 1, :] = 0
    rows[0, :, 1, 3] = 1.0
    assert find_sinks(rows, 6).layers == [[]]


def test_beyond_the_sink_renormalises_and_norm_weighting_is_the_formula():
    rng = np.random.default_rng(3)
    rows = random_rows(rng, sink=0)
    sinks = find_sinks(rows, 6)
    beyond = view_rows("beyond_sink", rows, sinks=sinks, value_norms=None)
    norms = rng.uniform(0.1, 2.0, size=rows.shape[:2] + (rows.shape[-1],))
    weighted = view_rows("norm_weighted", rows, sinks=sinks, value_norms=norms)
    for layer in range(rows.shape[0]):
        for head in range(rows.shape[1]):
            for t in range(rows.shape[2]):
                row = rows[layer, head, t].copy()
                w = row * norms[layer, head]
                np.testing.assert_allclose(weighted[layer, head, t], w / w.sum(), atol=1e-12)
                row[sinks.positions] = 0
                np.testing.assert_allclose(beyond[layer, head, t], row / row.sum(), atol=1e-12)
    with pytest.raises(ValueError, match="value norms"):
        view_rows("norm_weighted", rows, sinks=sinks, value_norms=None)
    with pytest.raises(ValueError, match="beyond_sink"):
        view_rows("no-such-view", rows, sinks=sinks, value_norms=None)


def copy_prompt(first: str):
    from tiny_models import COPY_WORDS

    rng = np.random.default_rng(7)
    seq = [COPY_WORDS[i] for i in rng.choice(np.arange(1, len(COPY_WORDS)), 12, replace=False)]
    k = 3
    return " ".join([first, *seq, *seq[:k]]), seq[k:], [1 + k + t for t in range(len(seq) - k)]


def test_a_planted_sink_is_found_and_seen_past(sink_model):
    """Every head of the hand-set model gives position 0 (a token whose value is zero) 60-100% of
    its attention, and the copy still works: raw attention ranks the sink first at every step,
    the views beyond the sink rank the copied source first, and the sink's share is stated."""
    prompt, answer, sources = copy_prompt("<unk>")
    (trace,) = Generator(sink_model, use_cache=False).generate_texts(
        [prompt], GenerationOptions(max_new_tokens=len(answer))
    )
    assert trace.tokens == answer
    induction = trace.attentions[1, 0]
    assert (induction.argmax(-1) == 0).all()  # the misleading picture: the sink first
    result = analyse_generation(trace)
    assert result.sinks.layers == [[0], [0]]
    np.testing.assert_allclose(result.sinks.share, 0.8, atol=1e-3)  # (0.6 + 1.0) / 2 heads
    beyond = result.views["beyond_sink"]
    assert beyond.rows[1, 0].argmax(-1).tolist() == sources
    assert beyond.rows[:, :, :, 0].max() == 0
    # the page's answer at a glance: the copied source first, in the last layer and the mean
    for aggregate in ("attention", "mean_attention"):
        firsts = [step[0]["position"] for step in looked_at(trace, beyond, aggregate)]
        assert firsts == sources, aggregate
    # rollout beyond the sink no longer collapses onto position 0
    roll = view_rollout("beyond_sink", full_attention(trace), sinks=result.sinks, value_norms=None)
    assert roll[trace.n_prompt - 1 :, 0].max() < 1e-12
    raw_roll = view_rollout("attention", full_attention(trace), sinks=result.sinks, value_norms=None)
    assert (raw_roll[trace.n_prompt - 1 :].argmax(-1) == 0).all()


def test_the_copy_circuit_has_no_sink_and_its_source_comes_first(copy_model):
    from tiny_models import COPY_WORDS

    prompt, answer, sources = copy_prompt(COPY_WORDS[0])
    (trace,) = Generator(copy_model, use_cache=False).generate_texts(
        [prompt], GenerationOptions(max_new_tokens=len(answer))
    )
    result = analyse_generation(trace)
    assert result.sinks.layers == [[], []] and not result.sinks.share.any()
    for name in result.views:
        assert not VIEWS[name].weighted or trace.value_norms is not None
    firsts = [step[0]["position"] for step in looked_at(trace, result.views["beyond_sink"], "attention")]
    assert firsts == sources
