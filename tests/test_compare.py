"""Comparing two runs: predictions and attention movement against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from attnreport.analysis.compare import compare_pair, summarise_comparison
from attnreport.core.trace import Trace


def trace(text, logits, attn):
    n = attn.shape[-1]
    return Trace(
        id=text,
        text=text,
        tokens=[f"t{i}" for i in range(n)],
        offsets=np.zeros((n, 2)),
        special=np.zeros(n, bool),
        attentions=attn,
        hidden=np.zeros((attn.shape[0] + 1, n, 2)),
        logits=logits,
    )


def test_pair_and_summary_by_hand():
    rng = np.random.default_rng(0)
    a = rng.random((2, 2, 3, 3))
    b = a.copy()
    b[1, 0, 2, 1] += 0.25
    x = compare_pair(trace("x", [2.0, 0.0], a), trace("x", [0.0, 1.0], b), ["p", "q"], ["p", "q"])
    assert x["prediction_a"] == "p" and x["prediction_b"] == "q" and x["agree"] is False
    assert x["max_attention_diff"] == pytest.approx(0.25)
    assert x["mean_attention_diff_by_layer"] == pytest.approx([0.0, 0.25 / 18])
    pa = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
    pb = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
    assert x["max_probability_diff"] == pytest.approx(np.max(np.abs(pa - pb)))
    y = compare_pair(trace("y", [1.0, 0.0], a), trace("y", [3.0, 0.0], a), ["p", "q"], ["p", "q"])
    assert y["agree"] is True and y["max_attention_diff"] == 0
    s = summarise_comparison([x, y])
    assert s["agreement"] == 0.5 and s["flipped"] == ["x"] and s["max_attention_diff"] == pytest.approx(0.25)
    assert s["mean_attention_diff_by_layer"] == pytest.approx([0.0, 0.25 / 36])


def test_different_texts_are_refused():
    a = np.full((1, 1, 2, 2), 0.5)
    with pytest.raises(ValueError, match="different texts"):
        compare_pair(trace("x", None, a), trace("y", None, a), [], [])
