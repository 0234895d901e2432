"""A sparse linear surrogate fitted to random ablations (ContextCite's method), its budget in runs."""

from __future__ import annotations

import warnings

import numpy as np

from attnreport.analysis.shapley.exact import exact_shapley
from attnreport.analysis.shapley.game import (
    MAX_ENUMERABLE,
    ShapleyResult,
    ValueFunction,
    check_players,
    check_positive,
    evaluate_distinct,
)

#: the fewest runs the surrogate is fitted on: v(∅), v(N) and enough ablations for 5 folds
MIN_RUNS = 2 + 10
#: folds of the cross-validation that picks the L1 penalty
FOLDS = 5
#: the penalties tried, from the one that zeroes every coefficient down by this factor
PENALTY_RANGE = 1e-3
PENALTIES = 24


def random_ablations(
    players: int,
    count: int,
    *,
    keep: float = 0.5,
    random_state: int | np.random.Generator | None = 0,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """``count`` distinct masks ``[count, p]``, each player kept independently with probability
    ``keep``, none of them a row of ``exclude`` (fewer only when there are not that many
    coalitions left to draw). The draw depends only on the arguments, not on any value."""
    p = check_players(players)
    if not 0 < keep < 1:
        raise ValueError(f"keep must be a probability strictly between 0 and 1, got {keep}")
    count = max(0, int(count))
    rng = np.random.default_rng(random_state)
    seen = set() if exclude is None else {row.tobytes() for row in np.packbits(exclude, axis=1)}
    out: list[np.ndarray] = []
    room = (1 << p) - len(seen) if p <= MAX_ENUMERABLE else count
    want = min(count, room)
    for _ in range(64):
        if len(out) >= want:
            break
        draw = rng.random((2 * (want - len(out)) + 8, p)) < keep
        for row, key in zip(draw, np.packbits(draw, axis=1), strict=True):
            k = key.tobytes()
            if k not in seen:
                seen.add(k)
                out.append(row)
                if len(out) == want:
                    break
    return np.array(out, dtype=bool).reshape(-1, p)


def lasso_surrogate(
    value: ValueFunction,
    players: int,
    *,
    runs: int,
    keep: float = 0.5,
    random_state: int | np.random.Generator | None = 0,
    batch: int = 4096,
) -> ShapleyResult:
    """Attributions as the coefficients of a sparse linear model of ``value`` over random ablations.

    ContextCite (Cohen-Wang et al. 2024, "ContextCite: Attributing Model Generation to
    Context"): draw masks keeping each unit with probability ``keep`` (1/2), run the model on
    each, and fit ``v(S) ≈ b + Σ_{i∈S} w_i`` by LASSO; ``w`` are the attributions. The L1
    penalty lets a few hundred runs explain hundreds of units when few of them matter, which is
    what a long document and its question usually are. Two departures from their code: the
    penalty is chosen by ``FOLDS``-fold cross-validation on the ablations (theirs is fixed,
    0.01 on standardised masks), so it follows the output's scale; and the masks are not
    standardised (every unit is kept with the same probability, so standardising only rescales
    the penalty).

    ``runs`` counts distinct evaluations of ``value``: v(∅) and v(N) (reported as
    ``f_baseline`` and ``f_input``, not fitted on: they lie far from the half-ablated masks the
    surrogate is for), and ``runs − 2`` random ablations. It does not grow with the players.
    When 2^p is no more than ``runs``, every coalition is enumerated and the values are the
    exact Shapley values (of a linear game they are its coefficients; otherwise the closest
    thing to them). The coefficients are the Shapley values *of the surrogate*; unlike Kernel
    SHAP's they need not sum to v(N) − v(∅) (``efficiency_gap`` says by how much), and they
    carry no standard error: the surrogate's error is read off held-out ablations instead
    (`analysis.lds`, the linear datamodeling score).
    """
    p = check_players(players)
    batch = check_positive(batch, "batch")
    runs = max(check_positive(runs, "runs"), MIN_RUNS)
    if p <= MAX_ENUMERABLE and (1 << p) <= runs:
        return exact_shapley(value, p, batch=batch)
    ends = np.stack([np.zeros(p, dtype=bool), np.ones(p, dtype=bool)])
    ablations = random_ablations(p, runs - 2, keep=keep, random_state=random_state, exclude=ends)
    v, evaluations = evaluate_distinct(value, np.concatenate([ends, ablations]), batch)
    coefficients = fit_sparse_linear(ablations, v[2:])
    return ShapleyResult(
        values=coefficients,
        f_baseline=float(v[0]),
        f_input=float(v[1]),
        exact=False,
        evaluations=evaluations,
        std_error=None,
        method="lasso-surrogate",
    )


def fit_sparse_linear(masks: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The coefficients ``[p]`` of ``y ≈ b + masks @ w`` by LASSO, the penalty by cross-validation."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LassoCV

    x = np.asarray(masks, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    centred = y - y.mean()
    top = float(np.abs((x - x.mean(axis=0)).T @ centred).max()) / len(y)
    if top == 0.0:  # a constant output, or no unit that varies: nothing to attribute
        return np.zeros(x.shape[1])
    penalties = top * np.logspace(0, np.log10(PENALTY_RANGE), PENALTIES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = LassoCV(alphas=penalties, cv=min(FOLDS, len(y)), max_iter=5000).fit(x, y)
    return np.asarray(fit.coef_, dtype=np.float64)
