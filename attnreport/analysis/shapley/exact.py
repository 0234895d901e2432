"""Exact Shapley values by enumerating every coalition: no error, and the reference for the rest."""

from __future__ import annotations

import math

import numpy as np

from attnreport.analysis.shapley.game import (
    MAX_ENUMERABLE,
    ShapleyResult,
    ValueFunction,
    check_players,
    check_positive,
    evaluate,
)


def exact_shapley(value: ValueFunction, players: int, *, batch: int = 4096) -> ShapleyResult:
    """Exact Shapley values by evaluating all 2^p coalitions once.

    Coalition ``c`` (an integer) has player i present iff bit i of ``c`` is set, so the mask
    array is built with shifts and the coalition S ∪ {i} of S is ``S | 1 << i``. The weighted
    marginal sum is then one gather over a ``[p, 2^(p−1)]`` index array: summing marginal
    differences (rather than weighted values) keeps the efficiency gap at rounding level.
    """
    p = check_players(players)
    batch = check_positive(batch, "batch")
    if p > MAX_ENUMERABLE:
        raise ValueError(f"exact Shapley values of {p} players need 2^{p} evaluations; use sampled_shapley")
    n = 1 << p
    codes = np.arange(n, dtype=np.int64)
    bits = np.arange(p, dtype=np.int64)
    v = np.empty(n)
    sizes = np.empty(n, dtype=np.int64)
    for start in range(0, n, batch):
        masks = ((codes[start : start + batch, None] >> bits) & 1).astype(bool)
        v[start : start + len(masks)] = evaluate(value, masks)
        sizes[start : start + len(masks)] = masks.sum(axis=1)

    # Coalitions without player i: insert a zero bit at position i into every (p−1)-bit number.
    j = np.arange(n >> 1, dtype=np.int64)[None, :]
    i = bits[:, None]
    without = ((j >> i) << (i + 1)) | (j & ((1 << i) - 1))
    marginal = v[without | (1 << i)] - v[without]
    # |S|! (p − |S| − 1)! / p!  ==  1 / (p · C(p − 1, |S|)), exact in floats for the p we enumerate
    weight = np.array([1.0 / (p * math.comb(p - 1, s)) for s in range(p)])
    phi = (weight[sizes[without]] * marginal).sum(axis=1)
    base, full = float(v[0]), float(v[n - 1])
    return ShapleyResult(
        values=phi,
        f_baseline=base,
        f_input=full,
        exact=True,
        evaluations=n,
        std_error=None,
        method="exact-enumeration",
    )
