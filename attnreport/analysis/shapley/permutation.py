"""Antithetic permutation sampling (Castro et al. 2009; antithetic pairs as in Mitchell et al. 2022)."""

from __future__ import annotations

import math

import numpy as np

from attnreport.analysis.shapley.game import (
    ShapleyResult,
    ValueFunction,
    check_players,
    check_positive,
    evaluate,
)

#: bound on the boolean prefix array built at once while sampling (elements)
_CHUNK_ELEMENTS = 1 << 24


def sampled_shapley(
    value: ValueFunction,
    players: int,
    *,
    permutations: int,
    random_state: int | np.random.Generator | None = 0,
    batch: int = 4096,
) -> ShapleyResult:
    """Shapley values estimated from random orders of the players, each paired with its reverse.

    ``permutations`` counts orders including the reversed ones; it is rounded up to an even
    number, and to at least 4, because the standard error is computed over antithetic *pairs*
    (the pair averages are the independent samples; the two halves of a pair are not) and
    needs two of them. Every prefix of every order is built as one mask array, deduplicated,
    and only the distinct coalitions are passed to ``value``.
    """
    p = check_players(players)
    batch = check_positive(batch, "batch")
    k = check_positive(permutations, "permutations")
    pairs = max(2, (k + 1) // 2)
    rng = np.random.default_rng(random_state)
    forward = rng.permuted(np.tile(np.arange(p), (pairs, 1)), axis=1)
    orders = np.stack([forward, forward[:, ::-1]], axis=1).reshape(2 * pairs, p)

    # rank[r, i] = position of player i in order r; prefix t holds the players ranked below t.
    rank = np.empty_like(orders)
    np.put_along_axis(rank, orders, np.broadcast_to(np.arange(p), orders.shape), axis=1)
    steps = np.arange(p + 1)[None, :, None]
    chunk = max(1, _CHUNK_ELEMENTS // ((p + 1) * p))
    keys = np.concatenate(
        [
            np.packbits(rank[start : start + chunk, None, :] < steps, axis=-1).reshape(-1, (p + 7) // 8)
            for start in range(0, len(orders), chunk)
        ]
    )
    distinct, inverse = np.unique(keys, axis=0, return_inverse=True)
    v_distinct = np.empty(len(distinct))
    for start in range(0, len(distinct), batch):
        masks = np.unpackbits(distinct[start : start + batch], axis=1, count=p).astype(bool)
        v_distinct[start : start + len(masks)] = evaluate(value, masks)

    v = v_distinct[inverse.reshape(-1)].reshape(len(orders), p + 1)
    contributions = np.empty((len(orders), p))
    np.put_along_axis(contributions, orders, np.diff(v, axis=1), axis=1)
    pair_means = contributions.reshape(pairs, 2, p).mean(axis=1)
    phi = pair_means.mean(axis=0)
    std_error = pair_means.std(axis=0, ddof=1) / math.sqrt(pairs)
    base, full = float(v[0, 0]), float(v[0, p])
    return ShapleyResult(
        values=phi,
        f_baseline=base,
        f_input=full,
        exact=False,
        evaluations=len(distinct),
        std_error=std_error,
        method="antithetic-permutation",
        permutations=len(orders),
    )
