"""Shapley values of a value function over coalitions of players, exact or sampled, and occlusion.

The module knows nothing about models or tokens. The caller declares the game as a value
function: it receives a boolean mask array ``[m, p]`` (True = player present) and returns one
float per row, e.g. the probability of the target class when the absent tokens are replaced by
the mask token. That declaration *is* the explanation's meaning, so it stays with the caller
(and is written next to the values in ``report.json``); here we only make the arithmetic exact,
cheap in calls to the model, and honest about its uncertainty.

Shapley value of player i (Shapley 1953)::

    φ_i = Σ_{S ⊆ N∖{i}} |S|! (p − |S| − 1)! / p! · (v(S ∪ {i}) − v(S))

Why these estimators (measured on the demo model: benchmarks/attributions.py):

- **exact enumeration** evaluates all 2^p coalitions once: no error at all, and cheaper than
  any estimator's budget for a handful of tokens.
- **paired Kernel SHAP** (`kernel_shap`, the default beyond ``max_exact`` up to
  `KERNEL_MAX_PLAYERS` tokens): Shapley values
  are a weighted least-squares fit over coalitions (Lundberg & Lee 2017); sampling each
  coalition with its complement and solving with the efficiency constraint (Covert & Lee
  2021) converges several times faster than permutations, and efficiency holds exactly
  whatever the sample. The heaviest strata (every token alone, every token left out) are
  enumerated, and shared with occlusion. Standard errors by bootstrapping the sampled pairs.
- **antithetic permutation sampling** (`sampled_shapley`; Castro et al. 2009, antithetic
  pairs as in Mitchell et al. 2022) averages marginal contributions over random orders, each
  paired with its reverse; efficient by construction (every order telescopes). At equal
  model runs it was less accurate than Kernel SHAP on short texts and more accurate on longer
  ones, so the default switches to it past `KERNEL_MAX_PLAYERS` tokens (`shapley`).
- **a logit-additive surrogate** (`surrogate_shapley`): exact Shapley values of a fit to 2p + 2
  runs. The cheapest, but a bias with no standard error, and on average further from the
  exact values than Kernel SHAP at a few runs per token: opt-in, and declared as such.

The model is the slow part, so every estimator builds its coalitions first, evaluates each
distinct one exactly once, in batches of ``batch`` rows, and does the rest in numpy.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field, replace

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
    #: v(∅): the value with every player absent (report.json's name)
    f_baseline: float
    #: v(N): the value with every player present
    f_input: float
    exact: bool
    #: distinct coalitions evaluated (calls to the model, counted in rows)
    evaluations: int
    #: standard error of each value, ``[p]``; None when exact
    std_error: np.ndarray | None
    #: "exact-enumeration", "kernel-shap-paired", "antithetic-permutation" or "<link>-additive-surrogate"
    method: str
    #: permutations sampled (antithetic ones included); None when exact
    permutations: int | None = None
    #: sum(values) − (f_input − f_baseline): zero up to float rounding when efficiency holds
    efficiency_gap: float = field(init=False)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        self.f_baseline, self.f_input = float(self.f_baseline), float(self.f_input)
        self.efficiency_gap = float(self.values.sum() - (self.f_input - self.f_baseline))
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
            "f_baseline": self.f_baseline,
            "f_input": self.f_input,
            "exact": bool(self.exact),
            "evaluations": int(self.evaluations),
            "std_error": None if self.std_error is None else self.std_error.tolist(),
            "efficiency_gap": float(self.efficiency_gap),
            "method": self.method,
            "permutations": self.permutations,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ShapleyResult:
        return cls(**{k: v for k, v in data.items() if k != "efficiency_gap"})


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
        f_baseline=base,
        f_input=full,
        exact=True,
        evaluations=n,
        std_error=None,
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
        f_baseline=base,
        f_input=full,
        exact=False,
        evaluations=len(distinct),
        std_error=std_error,
        method="antithetic-permutation",
        permutations=len(orders),
    )


def kernel_shap(
    value: ValueFunction,
    players: int,
    *,
    budget: int,
    random_state: int | np.random.Generator | None = 0,
    batch: int = 4096,
    bootstrap: int = 200,
) -> ShapleyResult:
    """Shapley values by paired, stratified Kernel SHAP with the efficiency constraint.

    Shapley values are the solution of a weighted least-squares problem over coalitions
    (Lundberg & Lee 2017; Charnes et al. 1988)::

        min_φ  Σ_S  w(S) (v(S) − v(∅) − Σ_{i∈S} φ_i)²   subject to  Σ_i φ_i = v(N) − v(∅),
        w(S) = (p − 1) / (C(p, |S|) · |S| · (p − |S|))

    Solving it on a sample of coalitions is Kernel SHAP; Covert & Lee (2021, "Improving
    KernelSHAP: Practical Shapley Value Estimation via Linear Regression", AISTATS) showed
    that sampling each coalition together with its complement ("paired sampling") and
    keeping the constraint exact (so efficiency holds to rounding, whatever the sample)
    makes it converge several times faster than permutation sampling. On top of theirs:

    - the heaviest strata are *enumerated*, not sampled: all p size-1 and p size-(p−1)
      coalitions always (they carry the most kernel weight, p / ((p − 1) H_{p−1}) of it;
      the size-(p−1) ones are occlusion's, so a memoising caller shares them), and
      further sizes k and p − k while the kernel's share of the remaining budget would cover
      them whole (the rule of shap's KernelExplainer);
    - the rest of the budget is drawn in complementary pairs from the remaining sizes, the
      size chosen by the kernel's weight (Covert & Lee) and each draw importance-weighted, so
      the regression targets the full kernel. Drawing sizes uniformly instead (the leverage
      scores of Musco & Witter 2024, "Provably Accurate Shapley Value Estimation via Leverage
      Score Sampling") measured the same on the demo model, within noise.

    ``budget`` counts distinct evaluations of ``value`` (including v(∅) and v(N)); it is
    raised to 2p + 10 at least (the outer strata and four pairs). When it reaches 2^p every
    coalition is enumerated and the values are exact. The standard error comes from
    ``bootstrap`` resamples of the sampled pairs (the enumerated strata are no source of
    error), which needs no further calls to the model (Covert & Lee's delta-method estimate
    is the analytic alternative). A few pairs under-state the spread: the calibration by
    budget is measured in benchmarks/shapley.py and tests/test_shapley.py.
    """
    p = _check_players(players)
    batch = _check_positive(batch, "batch")
    budget = _check_positive(budget, "budget")
    budget = max(budget, 2 * p + 10)
    if p <= MAX_ENUMERABLE and budget >= (1 << p):
        return exact_shapley(value, p, batch=batch)
    rng = np.random.default_rng(random_state)

    # kernel weight of one coalition of each size k, and of the whole stratum
    k_all = np.arange(1, p)
    stratum = (p - 1) / (k_all * (p - k_all))  # total weight of size k (w · C(p, k))
    counts = np.array([math.comb(p, int(k)) for k in k_all], dtype=float)

    # enumerate strata k and p − k from the outside in (k = 1 always), leaving at least four
    # pairs for the strata still sampled (budget < 2^p: some always are)
    left = budget - 2
    enumerated: list[int] = []
    for k in range(1, p // 2 + 1):
        pair = [k] if 2 * k == p else [k, p - k]
        cost = sum(counts[j - 1] for j in pair)
        remaining = [j for j in k_all if j not in enumerated]
        share = left * sum(stratum[j - 1] for j in pair) / stratum[np.array(remaining) - 1].sum()
        if left - cost >= 8 and (k == 1 or share >= cost):
            enumerated += pair
            left -= int(cost)
        else:
            break
    sampled_sizes = np.array([k for k in k_all if k not in enumerated], dtype=np.int64)

    masks = [np.zeros((1, p), dtype=bool), np.ones((1, p), dtype=bool)]
    weights = [np.zeros(1), np.zeros(1)]
    for k in enumerated:
        masks.append(_all_of_size(p, k))
        weights.append(np.full(len(masks[-1]), stratum[k - 1] / counts[k - 1]))
    fixed = np.concatenate(masks)
    fixed_w = np.concatenate(weights)

    # budget < 2^p and the rule above leave >= 8 evaluations and >= 1 size to sample
    mass = stratum[sampled_sizes - 1]
    q = mass / mass.sum()
    pairs_mask, pair_k = _draw_pairs(rng, p, sampled_sizes, q, left)
    # weight per occurrence: w(S) / E[occurrences of S per pair] / pairs, where a pair holds a
    # given S of size k with probability 2 q(k) / C(p, k); its complement has the same weight
    pair_w = stratum[pair_k - 1] / (2 * q[np.searchsorted(sampled_sizes, pair_k)] * len(pair_k))

    # every coalition once: the fixed ones, then each sampled pair (first, complement)
    sampled = pairs_mask.reshape(-1, p)
    allmasks = np.concatenate([fixed, sampled])
    v_all, evaluations = _evaluate_distinct(value, allmasks, batch)
    base, full = float(v_all[0]), float(v_all[1])

    z = allmasks.astype(np.float64)
    y = v_all - base
    nf = len(fixed)
    a_fixed = (z[:nf] * fixed_w[:, None]).T @ z[:nf]
    b_fixed = (z[:nf] * fixed_w[:, None]).T @ y[:nf]
    n_pairs = len(pair_w)
    zs = z[nf:].reshape(n_pairs, 2, p)
    ys = y[nf:].reshape(n_pairs, 2)
    # per-pair contributions to A and b, so that a bootstrap resample is a weighted sum
    a_pair = np.einsum("n,nja,njb->nab", pair_w, zs, zs)
    b_pair = np.einsum("n,nja,nj->na", pair_w, zs, ys)
    phi = _constrained_solve(a_fixed + a_pair.sum(axis=0), b_fixed + b_pair.sum(axis=0), full - base)
    reps = rng.multinomial(n_pairs, np.full(n_pairs, 1 / n_pairs), size=bootstrap).astype(np.float64)
    boot = _constrained_solve(
        a_fixed + np.einsum("rn,nab->rab", reps, a_pair), b_fixed + reps @ b_pair, full - base
    )
    std_error = boot.std(axis=0, ddof=1)
    return ShapleyResult(
        values=phi,
        f_baseline=base,
        f_input=full,
        exact=False,
        evaluations=evaluations,
        std_error=std_error,
        method="kernel-shap-paired",
    )


def _evaluate_distinct(value: ValueFunction, masks: np.ndarray, batch: int) -> tuple[np.ndarray, int]:
    """v of every row of ``masks``, calling ``value`` once per distinct row, in first-seen order."""
    keys = np.packbits(masks, axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rows = masks[first[order]]
    v_rows = np.empty(len(rows))
    for start in range(0, len(rows), batch):
        v_rows[start : start + batch] = _evaluate(value, rows[start : start + batch])
    v_distinct = np.empty(len(rows))
    v_distinct[order] = v_rows
    return v_distinct[inverse.reshape(-1)], len(rows)


def _constrained_solve(a: np.ndarray, b: np.ndarray, total: float) -> np.ndarray:
    """argmin (φᵀAφ − 2bᵀφ) subject to Σφ = total, for one system ``[p, p]`` or a stack ``[r, p, p]``.

    Lagrange: φ = A⁻¹(b − λ1), λ = (1ᵀA⁻¹b − total) / (1ᵀA⁻¹1). The correction puts the
    sum exactly on ``total``; the final shift spreads the rounding left over evenly.
    """
    ones = np.ones(a.shape[-1])
    rhs = np.stack([b, np.broadcast_to(ones, b.shape)], axis=-1)
    solved = np.linalg.lstsq(a, rhs, rcond=None)[0] if a.ndim == 2 else _stack_solve(a, rhs)
    ainv_b, ainv_1 = solved[..., 0], solved[..., 1]
    lam = (ainv_b.sum(axis=-1) - total) / ainv_1.sum(axis=-1)
    phi = ainv_b - lam[..., None] * ainv_1
    return phi + ((total - phi.sum(axis=-1)) / a.shape[-1])[..., None]


def _stack_solve(a: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(a, rhs)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(a) @ rhs


def _all_of_size(p: int, k: int) -> np.ndarray:
    """Every coalition of exactly k of p players, as a mask array ``[C(p, k), p]``."""
    import itertools

    combos = np.array(list(itertools.combinations(range(p), k)), dtype=np.int64).reshape(-1, k)
    masks = np.zeros((len(combos), p), dtype=bool)
    np.put_along_axis(masks, combos, True, axis=1)
    return masks


def _draw_pairs(rng: np.random.Generator, p: int, sizes: np.ndarray, q: np.ndarray, distinct: int):
    """Complementary pairs (size k with probability q(k), members uniform), drawn with
    replacement until they hold ``distinct`` different coalitions (repeats stay in the sample
    with their weight: the estimator is the with-replacement one, only the stopping point
    is set by the budget). Returns masks ``[pairs, 2, p]`` and each pair's first size."""
    pool_masks, pool_k = np.zeros((0, 2, p), dtype=bool), np.zeros(0, dtype=np.int64)
    want = max(1, distinct // 2)
    for _ in range(64):
        k = rng.choice(sizes, size=2 * want + 8, p=q)
        rank = np.argsort(rng.random((len(k), p)), axis=1).argsort(axis=1)
        first = rank < k[:, None]
        pool_masks = np.concatenate([pool_masks, np.stack([first, ~first], axis=1)])
        pool_k = np.concatenate([pool_k, k])
        keys = np.packbits(pool_masks.reshape(-1, p), axis=1)
        _, first_seen = np.unique(keys, axis=0, return_index=True)
        new = np.zeros(len(keys), dtype=np.int64)
        new[first_seen] = 1
        # distinct coalitions held by the first j pairs, for every j
        held = np.cumsum(new.reshape(-1, 2).sum(axis=1))
        if held[-1] >= distinct:
            take = int(np.searchsorted(held, distinct, side="right"))
            return pool_masks[:take], pool_k[:take]
        want *= 2
    return pool_masks, pool_k


def surrogate_shapley(
    value: ValueFunction,
    players: int,
    *,
    link: str = "logit",
    permutations: int = 4096,
    random_state: int | np.random.Generator | None = 0,
    batch: int = 4096,
) -> ShapleyResult:
    """Exact Shapley values of a link-additive surrogate fitted to 2p + 2 evaluations.

    Not an estimator of the model's Shapley values with a sampling error: an approximation
    whose error is a bias, invisible in its own evaluations, so it reports no standard error
    and declares itself (``method="logit-additive-surrogate"``). It evaluates v(∅), v(N) and
    the outer strata Kernel SHAP always enumerates (every token alone, every token left out;
    the second are occlusion's), and fits ``v(S) ≈ g⁻¹(a + Σ_{i∈S} β_i)``: with the logit
    link, tokens are independent evidence for the class, which lets the surrogate saturate
    like a softmax does. With ``a = g(v(∅))`` and Σβ = g(v(N)) − a, β_i is the mean of token
    i's gain alone and its loss when left out (in link space), shifted evenly to meet the
    sum. The surrogate's Shapley values are then computed without the model: exactly for up
    to 14 players, else from ``permutations`` antithetic orders (cheap: cumulative sums),
    and efficiency is exact because the surrogate meets v(∅) and v(N).

    The idea is regression adjustment's first half (Witter et al. 2025, "Regression-adjusted
    Monte Carlo Estimators for Shapley Values and Probabilistic Values"); the second half
    (Kernel SHAP on the residual) measured no better than plain Kernel SHAP on the demo
    model, whose games interact too strongly off the outer strata for a few samples to
    correct. Against exact values it is on average further off than Kernel SHAP at a few
    runs per token, and much further on long texts (benchmarks/attributions.py prints how
    far). ``link="identity"``
    (for a logit output, already additive evidence) gives the mean of occlusion and
    leave-one-in, re-centred.
    """
    p = _check_players(players)
    batch = _check_positive(batch, "batch")
    if link not in _LINKS:
        raise ValueError(f"link {link!r} is unknown; choose one of {', '.join(_LINKS)}")
    forward, inverse = _LINKS[link]
    eye = np.eye(p, dtype=bool)
    masks = np.concatenate([np.zeros((1, p), dtype=bool), np.ones((1, p), dtype=bool), eye, ~eye])
    v, evaluations = _evaluate_distinct(value, masks, batch)
    base, full = float(v[0]), float(v[1])
    g = forward(v)
    a, total = g[0], g[1] - g[0]
    gain = ((g[2 : 2 + p] - a) + (g[1] - g[2 + p :])) / 2
    beta = gain + (total - gain.sum()) / p
    if p <= 14:
        phi = exact_shapley(lambda m: inverse(a + m @ beta), p, batch=1 << 14).values
    else:
        pairs = max(2, _check_positive(permutations, "permutations") // 2)
        rng = np.random.default_rng(random_state)
        order = rng.permuted(np.tile(np.arange(p), (pairs, 1)), axis=1)
        orders = np.concatenate([order, order[:, ::-1]])
        steps = np.cumsum(beta[orders], axis=1)
        path = inverse(a + np.concatenate([np.zeros((len(orders), 1)), steps], axis=1))
        contributions = np.empty((len(orders), p))
        np.put_along_axis(contributions, orders, np.diff(path, axis=1), axis=1)
        phi = contributions.mean(axis=0)
    phi = phi + ((full - base) - phi.sum()) / p  # the link's clipping at 0 or 1, and rounding
    return ShapleyResult(
        values=phi,
        f_baseline=base,
        f_input=full,
        exact=False,
        evaluations=evaluations,
        std_error=None,
        method=f"{link}-additive-surrogate",
    )


def _logit(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 1e-12, 1 - 1e-12)
    return np.log(v) - np.log1p(-v)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


_LINKS = {"logit": (_logit, _sigmoid), "identity": (lambda v: v, lambda x: x)}

#: "auto" uses Kernel SHAP up to this many players and antithetic permutations beyond: at
#: equal model runs Kernel SHAP was the closer of the two on short texts and permutations on
#: longer ones (benchmarks/attributions.py prints the comparison)
KERNEL_MAX_PLAYERS = 14


@dataclass(frozen=True)
class Budget:
    """What an estimator may spend, and how it draws: the options every estimator receives."""

    evaluations_per_player: int = 8
    permutations: int = 256
    link: str = "logit"
    random_state: int | np.random.Generator | None = 0
    batch: int = 4096


def _kernel(value: ValueFunction, p: int, budget: Budget) -> ShapleyResult:
    runs = _check_positive(budget.evaluations_per_player, "evaluations_per_player") * p
    return kernel_shap(value, p, budget=runs, random_state=budget.random_state, batch=budget.batch)


def _permutation(value: ValueFunction, p: int, budget: Budget) -> ShapleyResult:
    return sampled_shapley(
        value, p, permutations=budget.permutations, random_state=budget.random_state, batch=budget.batch
    )


def _surrogate(value: ValueFunction, p: int, budget: Budget) -> ShapleyResult:
    if p <= MAX_ENUMERABLE and 1 << p <= 2 * p + 2:
        return exact_shapley(value, p, batch=budget.batch)
    return surrogate_shapley(value, p, link=budget.link, random_state=budget.random_state, batch=budget.batch)


def _auto(value: ValueFunction, p: int, budget: Budget) -> ShapleyResult:
    if p <= KERNEL_MAX_PLAYERS:
        return _kernel(value, p, budget)
    # as many antithetic pairs of orders as the runs buy: a pair adds at most 2(p - 1)
    # coalitions to the empty and the full one
    runs = _check_positive(budget.evaluations_per_player, "evaluations_per_player") * p
    permutations = 2 * max(2, (runs - 2) // (2 * (p - 1)))
    return _permutation(value, p, replace(budget, permutations=permutations))


Estimator = Callable[[ValueFunction, int, Budget], ShapleyResult]

#: the estimators for games too large to enumerate, by the name a config uses (`shapley`'s
#: docstring says what each does); adding one is one entry here
ESTIMATORS: dict[str, Estimator] = {
    "auto": _auto,
    "kernel": _kernel,
    "permutation": _permutation,
    "surrogate": _surrogate,
}


def shapley(
    value: ValueFunction,
    players: int,
    *,
    method: str = "auto",
    max_exact: int = 8,
    evaluations_per_player: int = 8,
    permutations: int = 256,
    link: str = "logit",
    random_state: int | np.random.Generator | None = 0,
    batch: int = 4096,
) -> ShapleyResult:
    """Exact Shapley values up to ``max_exact`` players, estimated by ``method`` beyond.

    - ``"auto"`` (the default): ``"kernel"`` up to `KERNEL_MAX_PLAYERS` players, else
      ``"permutation"`` with as many orders as ``evaluations_per_player · p`` model runs buy:
      regression needs many more coalitions than unknowns, and a fixed number of runs per
      token gives it relatively fewer as the text grows;
    - ``"kernel"``: `kernel_shap` with ``evaluations_per_player · p`` evaluations; values,
      standard errors and exact efficiency;
    - ``"permutation"``: `sampled_shapley` with ``permutations`` orders (about p evaluations each);
    - ``"surrogate"``: `surrogate_shapley`, 2p + 2 evaluations, no standard error (a bias, not
      a sampling error; read its docstring before choosing it).

    Exact enumeration is also used whenever 2^p is no more than the estimator would spend.
    """
    p = _check_players(players)
    if method not in ESTIMATORS:
        raise ValueError(f"Shapley method {method!r} is unknown; choose one of {', '.join(ESTIMATORS)}")
    if p <= max_exact:
        return exact_shapley(value, p, batch=batch)
    budget = Budget(
        evaluations_per_player=evaluations_per_player,
        permutations=permutations,
        link=link,
        random_state=random_state,
        batch=batch,
    )
    return ESTIMATORS[method](value, p, budget)


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
