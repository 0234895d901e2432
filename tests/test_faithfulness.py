"""Comprehensiveness and sufficiency against hand-computed values on games we can sum by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attnreport.analysis.faithfulness import BINS, faithfulness, random_faithfulness, top_counts


def additive(weights):
    w = np.asarray(weights, dtype=float)
    return lambda masks: np.asarray(masks, dtype=float) @ w


def test_top_counts_round_up_and_stay_in_range():
    assert top_counts(10) == [1, 1, 1, 2, 5]
    assert top_counts(3) == [1, 1, 1, 1, 2]
    assert top_counts(200) == [2, 10, 20, 40, 100]


def test_additive_game_by_hand():
    w = np.array([0.5, -0.1, 0.3, 0.05, 0.0, 0.2, 0.1, -0.2, 0.4, 0.15])
    result = faithfulness(additive(w), scores=w)  # the true ranking
    top = np.sort(w)[::-1]
    comp = [top[:k].sum() for k in top_counts(len(w))]  # removing the top k loses exactly their weight
    suff = [w.sum() - top[:k].sum() for k in top_counts(len(w))]  # keeping only them loses the rest
    np.testing.assert_allclose(result.comprehensiveness_bins, comp)
    np.testing.assert_allclose(result.sufficiency_bins, suff)
    assert result.comprehensiveness == pytest.approx(np.mean(comp))
    reversed_ = faithfulness(additive(w), scores=-w)
    assert reversed_.comprehensiveness < result.comprehensiveness
    assert reversed_.sufficiency > result.sufficiency


def test_random_rankings_average_towards_the_expected_share():
    w = np.linspace(1, 2, 40)
    rand = random_faithfulness(additive(w), 40, samples=400, random_state=1)
    expected = [k / 40 * w.sum() for k in top_counts(40)]  # E[sum of k random weights]
    np.testing.assert_allclose(rand.comprehensiveness_bins, expected, rtol=0.05)
    truth = faithfulness(additive(w), scores=w)
    assert truth.comprehensiveness > rand.comprehensiveness


def test_one_batched_call_per_ranking_set():
    calls = []

    def value(masks):
        calls.append(masks.shape)
        return masks.sum(axis=1).astype(float)

    random_faithfulness(value, 12, samples=5)
    assert calls == [(1 + 5 * 2 * len(BINS), 12)]
    assert math.isclose(faithfulness(value, np.arange(12.0)).comprehensiveness, np.mean(top_counts(12)))
