"""Aggregation against loops written out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from attnreport.analysis.aggregate import distance_profile, head_average, sparsify


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


def test_distance_profile_by_hand():
    a = random_attention(np.random.default_rng(2), n=6)
    special = np.array([True, False, False, False, False, True])
    prof = distance_profile(a, special=special)
    mean = a.mean(axis=1)
    for layer in range(2):
        for d in range(6):
            vals = [mean[layer, i, j] for i in range(1, 5) for j in range(1, 5) if abs(i - j) == d]
            if vals:
                assert prof[layer, d] == pytest.approx(np.mean(vals))
            else:
                assert np.isnan(prof[layer, d])
