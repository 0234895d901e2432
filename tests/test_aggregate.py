"""Aggregation against loops written out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from attnreport.analysis.aggregate import (
    DistanceDecay,
    distance_bins,
    head_average,
    sparsify,
)


def random_attention(rng, layers=2, heads=3, n=7):
    a = rng.random((layers, heads, n, n)) ** 3
    return a / a.sum(-1, keepdims=True)


def test_head_average():
    a = random_attention(np.random.default_rng(0))
    np.testing.assert_allclose(head_average(a), (a[:, 0] + a[:, 1] + a[:, 2]) / 3)
    np.testing.assert_allclose(head_average(a, layers=True), a.mean(axis=(0, 1)))


def test_top_k_keeps_the_k_largest_of_each_row_and_reports_the_mass():
    a = random_attention(np.random.default_rng(1))[0, 0]
    s = sparsify(a, top_k=2)
    for row, kept in zip(a, s.weights, strict=True):
        top = sorted(row)[-2:]
        assert sorted(kept[kept > 0]) == pytest.approx(top)
    assert s.mass_kept == pytest.approx(sum(sorted(r)[-2:][0] + sorted(r)[-1] for r in a) / a.sum())
    assert s.edges_kept == pytest.approx(2 / 7)


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    row = np.array([0.05, 0.5, 0.1, 0.3, 0.05])
    s = sparsify(row[None], top_p=0.75)
    assert s.weights[0].tolist() == [0, 0.5, 0, 0.3, 0]  # 0.5 alone < 0.75, 0.5 + 0.3 >= 0.75
    assert s.mass_kept == pytest.approx(0.8)
    assert sparsify(row[None], top_p=1.0).weights[0].tolist() == row.tolist()
    with pytest.raises(ValueError, match="exactly one"):
        sparsify(row, top_k=1, top_p=0.5)


def _random_rows(rng, layers, heads, n, *, causal=False, window=None):
    a = rng.random((layers, heads, n, n)) ** 4
    mask = np.ones((n, n), dtype=bool)
    if causal:
        mask &= np.tri(n, dtype=bool)
    if window is not None:
        for i in range(n):
            lo = max(0, min(i - window // 2, n - window))
            mask[i, :lo] = False
            mask[i, lo + window :] = False
    a = np.where(mask, a, 0.0)
    return a / a.sum(axis=-1, keepdims=True), mask


@pytest.mark.parametrize("causal, window", [(False, None), (True, None), (False, 5)])
def test_distance_decay_matches_brute_force_over_examples(causal, window):
    rng = np.random.default_rng(3)
    decay = DistanceDecay(2, 40, causal=causal)
    sums, counts = {}, {}
    for n in (7, 12, 19):
        a, mask = _random_rows(rng, 2, 3, n, causal=causal, window=window)
        special = np.zeros(n, dtype=bool)
        special[0] = special[-1] = True
        decay.add(a, special)
        mean = a.mean(axis=1)
        for i in range(n):
            m = mask[i].sum()
            for j in range(n):
                d = abs(i - j)
                if d == 0 or special[i] or special[j] or not mask[i, j]:
                    continue
                b = next(k for k, (lo, hi) in enumerate(distance_bins(40)) if lo <= d <= hi)
                counts[b] = counts.get(b, 0) + 1
                for layer in range(2):
                    sums[(layer, b)] = sums.get((layer, b), 0.0) + mean[layer, i, j] * m
    out = decay.profile()
    assert out["pairs"] == [counts.get(b, 0) for b in range(len(out["bins"]))]
    for layer in range(2):
        for b, value in enumerate(out["relative_weight"][layer]):
            if counts.get(b):
                assert value == pytest.approx(sums[(layer, b)] / counts[b], rel=1e-12)
            else:
                assert value is None


def test_uniform_attention_has_relative_weight_one_at_every_distance():
    n = 30
    a = np.full((3, 2, n, n), 1.0 / n)
    decay = DistanceDecay(3, n)
    decay.add(a, np.zeros(n, dtype=bool))
    assert all(x == pytest.approx(1.0) for row in decay.profile()["relative_weight"] for x in row)


def test_previous_token_attention_puts_all_weight_at_distance_one():
    n = 16
    a = np.zeros((1, 1, n, n))
    a[0, 0, 0, 0] = 1.0
    a[0, 0, np.arange(1, n), np.arange(n - 1)] = 1.0
    a = np.where(np.tri(n, dtype=bool), a + 1e-9, 0.0)  # every earlier key visible, causal
    a /= a.sum(axis=-1, keepdims=True)
    decay = DistanceDecay(1, n, causal=True)
    decay.add(a, np.zeros(n, dtype=bool))
    weights = decay.profile()["relative_weight"][0]
    assert weights[0] > 5 and all(x < 1e-6 for x in weights[1:])
