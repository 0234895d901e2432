"""Shapley values of a value function over coalitions of players, exact or sampled, and occlusion.

The module knows nothing about models or tokens. The caller declares the game as a value
function: it receives a boolean mask array ``[m, p]`` (True = player present) and returns one
float per row, e.g. the probability of the target class when the absent tokens are replaced by
the mask token. That declaration *is* the explanation's meaning, so it stays with the caller
(and is written next to the values in ``report.json``); here we only make the arithmetic exact,
cheap in calls to the model, and honest about its uncertainty.

Shapley value of player i (Shapley 1953)::

    φ_i = Σ_{S ⊆ N∖{i}} |S|! (p − |S| − 1)! / p! · (v(S ∪ {i}) − v(S))

Why the two estimators:

- **exact enumeration** evaluates all 2^p coalitions once. Up to ~12 players (4096 rows) that
  costs about as much as a careful sample and has no error at all, so it is the default there.
- **antithetic permutation sampling** (Castro et al. 2009; antithetic pairs as in Mitchell et
  al. 2022) averages each player's marginal contribution over random orders. Each order is
  paired with its reverse, whose prefixes are the complements of the forward prefixes: for
  near-additive games the two marginals err in opposite directions, which cuts the variance.
  Every order's marginals telescope to v(N) − v(∅), so the estimate is *efficient by
  construction*: the bar chart on a page always sums to the change in the prediction.

The model is the slow part, so both estimators build every coalition first, evaluate each
distinct one exactly once (the empty and full coalitions recur in every permutation, and for
short texts so do many prefixes), in batches of ``batch`` rows, and do the rest in numpy.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ValueFunction = Callable[[np.ndarray], np.ndarray]

#: enumeration needs 2^p coalitions and int64 bit codes: beyond this, sample
MAX_ENUMERABLE = 30

#: bound on the boolean prefix array built at once while sampling (elements)
_CHUNK_ELEMENTS = 1 << 24


@dataclass
class ShapleyResult:
    #: one Shapley value per player, ``[p]``
    values: np.ndarray
    #: v(∅): the value with every player absent
    base: float
    #: v(N): the value with every player present
    full: float
    exact: bool
    #: distinct coalitions evaluated (calls to the model, counted in rows)
    evaluations: int
    #: standard error of each value, ``[p]``; None when exact
    std_error: np.ndarray | None
    #: sum(values) − (full − base): zero up to float rounding when efficiency holds
    efficiency_gap: float
    #: "exact-enumeration" or "antithetic-permutation"
    method: str
    #: permutations sampled (antithetic ones included); None when exact
    permutations: int | None = None

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim != 1:
            raise ValueError(f"values must be [p], got {list(self.values.shape)}")
        if self.std_error is not None:
            self.std_error = np.asarray(self.std_error, dtype=np.float64)
            if self.std_error.shape != self.values.shape:
                raise ValueError(
                    f"std_error must match values {list(self.values.shape)}, got {list(self.std_error.shape)}"
                )

    def to_dict(self) -> dict:
        return {
            "values": self.values.tolist(),
            "base": float(self.base),
            "full": float(self.full),
            "exact": bool(self.exact),
            "evaluations": int(self.evaluations),
            "std_error": None if self.std_error is None else self.std_error.tolist(),
            "efficiency_gap": float(self.efficiency_gap),
            "method": self.method,
            "permutations": self.permutations,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ShapleyResult:
        return cls(**data)


def exact_shapley(value: ValueFunction, players: int, *, batch: int = 4096) -> ShapleyResult:
    """Exact Shapley values by evaluating all 2^p coalitions once.

    Coalition ``c`` (an integer) has player i present iff bit i of ``c`` is set, so the mask
    array is built with shifts and the coalition S ∪ {i} of S is ``S | 1 << i``. The weighted
    marginal sum is then one gather over a ``[p, 2^(p−1)]`` index array: summing marginal
    differences (rather than weighted values) keeps the efficiency gap at rounding level.
    """
    p = _check_players(players)
    batch = _check_positive(batch, "batch")
    if p > MAX_ENUMERABLE:
        raise ValueError(f"exact Shapley values of {p} players need 2^{p} evaluations; use sampled_shapley")
    n = 1 << p
    codes = np.arange(n, dtype=np.int64)
    bits = np.arange(p, dtype=np.int64)
    v = np.empty(n)
    sizes = np.empty(n, dtype=np.int64)
    for start in range(0, n, batch):
        masks = ((codes[start : start + batch, None] >> bits) & 1).astype(bool)
        v[start : start + len(masks)] = _evaluate(value, masks)
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
        base=base,
        full=full,
        exact=True,
        evaluations=n,
        std_error=None,
        efficiency_gap=float(phi.sum() - (full - base)),
        method="exact-enumeration",
    )


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
    p = _check_players(players)
    batch = _check_positive(batch, "batch")
    k = _check_positive(permutations, "permutations")
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
        v_distinct[start : start + len(masks)] = _evaluate(value, masks)

    v = v_distinct[inverse.reshape(-1)].reshape(len(orders), p + 1)
    contributions = np.empty((len(orders), p))
    np.put_along_axis(contributions, orders, np.diff(v, axis=1), axis=1)
    pair_means = contributions.reshape(pairs, 2, p).mean(axis=1)
    phi = pair_means.mean(axis=0)
    std_error = pair_means.std(axis=0, ddof=1) / math.sqrt(pairs)
    base, full = float(v[0, 0]), float(v[0, p])
    return ShapleyResult(
        values=phi,
        base=base,
        full=full,
        exact=False,
        evaluations=len(distinct),
        std_error=std_error,
        efficiency_gap=float(phi.sum() - (full - base)),
        method="antithetic-permutation",
        permutations=len(orders),
    )


def shapley(
    value: ValueFunction,
    players: int,
    *,
    max_exact: int = 12,
    permutations: int = 256,
    random_state: int | np.random.Generator | None = 0,
    batch: int = 4096,
) -> ShapleyResult:
    """Exact Shapley values up to ``max_exact`` players, sampled beyond.

    At the default 12 players enumeration costs 4096 evaluations and 256 permutations up to
    256 · 11 + 2 = 2818 distinct ones, so there exactness costs less than twice a sample and
    removes all error; each further player doubles enumeration but adds only 256 to a sample.
    """
    if _check_players(players) <= max_exact:
        return exact_shapley(value, players, batch=batch)
    return sampled_shapley(value, players, permutations=permutations, random_state=random_state, batch=batch)


def occlusion(value: ValueFunction, players: int) -> np.ndarray:
    """Leave-one-out importance ``v(N) − v(N ∖ {i})`` for every player, in one batched call.

    The cheapest attribution (p + 1 evaluations) and the reference the other views are
    compared with: it sees only what each player adds on top of all the others, so it
    misses redundancy (two tokens that each carry the same evidence both score near zero).
    """
    p = _check_players(players)
    masks = np.ones((p + 1, p), dtype=bool)
    masks[np.arange(1, p + 1), np.arange(p)] = False
    v = _evaluate(value, masks)
    return v[0] - v[1:]


def _evaluate(value: ValueFunction, masks: np.ndarray) -> np.ndarray:
    """One call to the value function, checked: a wrong shape or a NaN would poison every value."""
    result = np.asarray(value(masks), dtype=np.float64)
    if result.shape != (len(masks),):
        msg = (
            f"value function returned shape {list(result.shape)} for masks of shape "
            f"{list(masks.shape)}; it must return one value per row, shape [{len(masks)}]"
        )
        raise ValueError(msg)
    if not np.isfinite(result).all():
        bad = int((~np.isfinite(result)).sum())
        raise ValueError(f"value function returned {bad} non-finite values for {len(masks)} coalitions")
    return result


def _check_players(players: int) -> int:
    p = operator.index(players)
    if p < 1:
        raise ValueError(f"players must be at least 1, got {p}")
    return p


def _check_positive(number: int, name: str) -> int:
    n = operator.index(number)
    if n < 1:
        raise ValueError(f"{name} must be at least 1, got {n}")
    return n
