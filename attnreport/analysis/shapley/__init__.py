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
  ones, so the default switches to it past `KERNEL_MAX_PLAYERS` tokens, up to
  `LASSO_MIN_PLAYERS` (`shapley`).
- **a sparse linear surrogate** (`lasso_surrogate`, ContextCite's method; the default past
  `LASSO_MIN_PLAYERS`): LASSO of the value on ``runs`` random half-ablations; its cost is a
  number of runs whatever the number of players, and its values are scored on held-out
  ablations (`analysis.lds`), not by a standard error. On a real answer over 25 sentences
  (benchmarks/surrogate_vs_kernel.py) it beat Kernel SHAP and permutations at equal runs by
  far; on synthetic games with dense interactions it did not (Kernel SHAP is exact on games
  of degree 2): the model's sparsity is what it bets on.
- **a logit-additive surrogate** (`surrogate_shapley`): exact Shapley values of a fit to 2p + 2
  runs. The cheapest, but a bias with no standard error, and on average further from the
  exact values than Kernel SHAP at a few runs per token: opt-in, and declared as such.

The model is the slow part, so every estimator builds its coalitions first, evaluates each
distinct one exactly once, in batches of ``batch`` rows, and does the rest in numpy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from attnreport.analysis.shapley.exact import exact_shapley
from attnreport.analysis.shapley.game import (
    MAX_ENUMERABLE,
    ShapleyResult,
    ValueFunction,
    check_players,
    check_positive,
)
from attnreport.analysis.shapley.kernel import kernel_shap
from attnreport.analysis.shapley.lasso import lasso_surrogate
from attnreport.analysis.shapley.occlusion import occlusion
from attnreport.analysis.shapley.permutation import sampled_shapley
from attnreport.analysis.shapley.surrogate import surrogate_shapley

__all__ = [
    "ESTIMATORS",
    "KERNEL_MAX_PLAYERS",
    "LASSO_MIN_PLAYERS",
    "MAX_ENUMERABLE",
    "Budget",
    "ShapleyResult",
    "ValueFunction",
    "exact_shapley",
    "kernel_shap",
    "lasso_surrogate",
    "occlusion",
    "sampled_shapley",
    "shapley",
    "surrogate_shapley",
]

#: "auto" uses Kernel SHAP up to this many players and antithetic permutations beyond: at
#: equal model runs Kernel SHAP was the closer of the two on short texts and permutations on
#: longer ones (benchmarks/attributions.py prints the comparison)
KERNEL_MAX_PLAYERS = 14

#: "auto" fits the LASSO surrogate beyond this many players, on ``min(runs, evaluations_per_player
#: · p)`` runs: on SmolLM2's answer over a 25-sentence prompt it predicted held-out ablations far
#: better than Kernel SHAP or permutations at equal runs (linear datamodeling score 0.93-0.95 at
#: 32-128 runs, against Kernel SHAP's 0.42-0.69 and permutations' 0.71-0.77) and its top units
#: mattered more (benchmarks/surrogate_vs_kernel.py; README). Measured at 25 units, applied past 64:
#: a classifier's text is scored by at most 64 tokens or words, and its pages keep the standard
#: errors and efficiency of the estimators measured there (benchmarks/attributions.py) until the
#: surrogate is measured on them too; past 64 units a prompt is scored by sentences or spans, where
#: a per-unit budget would grow without bound
LASSO_MIN_PLAYERS = 64


@dataclass(frozen=True)
class Budget:
    """What an estimator may spend, and how it draws: the options every estimator receives."""

    evaluations_per_player: int = 8
    permutations: int = 256
    link: str = "logit"
    #: model runs of "lasso", whatever the number of players
    runs: int = 256
    random_state: int | np.random.Generator | None = 0
    batch: int = 4096


def _kernel(value: ValueFunction, p: int, budget: Budget) -> ShapleyResult:
    runs = check_positive(budget.evaluations_per_player, "evaluations_per_player") * p
    return kernel_shap(value, p, budget=runs, random_state=budget.random_state, batch=budget.batch)


def _permutation(value: ValueFunction, p: int, budget: Budget) -> ShapleyResult:
    return sampled_shapley(
        value, p, permutations=budget.permutations, random_state=budget.random_state, batch=budget.batch
    )


def _lasso(value: ValueFunction, p: int, budget: Budget) -> ShapleyResult:
    return lasso_surrogate(value, p, runs=budget.runs, random_state=budget.random_state, batch=budget.batch)


def _surrogate(value: ValueFunction, p: int, budget: Budget) -> ShapleyResult:
    if p <= MAX_ENUMERABLE and 1 << p <= 2 * p + 2:
        return exact_shapley(value, p, batch=budget.batch)
    return surrogate_shapley(value, p, link=budget.link, random_state=budget.random_state, batch=budget.batch)


def _auto(value: ValueFunction, p: int, budget: Budget) -> ShapleyResult:
    if p <= KERNEL_MAX_PLAYERS:
        return _kernel(value, p, budget)
    if p > LASSO_MIN_PLAYERS:
        # the per-unit budget, capped at `runs`: no more than before, and bounded whatever p
        runs = min(budget.runs, check_positive(budget.evaluations_per_player, "evaluations_per_player") * p)
        return _lasso(value, p, replace(budget, runs=runs))
    # as many antithetic pairs of orders as the runs buy: a pair adds at most 2(p - 1)
    # coalitions to the empty and the full one
    runs = check_positive(budget.evaluations_per_player, "evaluations_per_player") * p
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
    "lasso": _lasso,
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
    runs: int = 256,
    random_state: int | np.random.Generator | None = 0,
    batch: int = 4096,
) -> ShapleyResult:
    """Exact Shapley values up to ``max_exact`` players, estimated by ``method`` beyond.

    - ``"auto"`` (the default): ``"kernel"`` up to `KERNEL_MAX_PLAYERS` players, then
      ``"permutation"`` with as many orders as ``evaluations_per_player · p`` model runs buy
      (regression needs many more coalitions than unknowns, and a fixed number of runs per
      token gives it relatively fewer as the text grows), and beyond `LASSO_MIN_PLAYERS`
      ``"lasso"`` on ``min(runs, evaluations_per_player · p)`` runs (sparsity is what lets a
      few hundred runs explain a long prompt: measured better on a real answer);
    - ``"kernel"``: `kernel_shap` with ``evaluations_per_player · p`` evaluations; values,
      standard errors and exact efficiency;
    - ``"permutation"``: `sampled_shapley` with ``permutations`` orders (about p evaluations each);
    - ``"surrogate"``: `surrogate_shapley`, 2p + 2 evaluations, no standard error (a bias, not
      a sampling error; read its docstring before choosing it);
    - ``"lasso"``: `lasso_surrogate`, ``runs`` evaluations whatever ``players``; no standard
      error (score it with `analysis.lds.linear_datamodeling_score`).

    Exact enumeration is also used whenever 2^p is no more than the estimator would spend.
    """
    p = check_players(players)
    if method not in ESTIMATORS:
        raise ValueError(f"Shapley method {method!r} is unknown; choose one of {', '.join(ESTIMATORS)}")
    if p <= max_exact:
        return exact_shapley(value, p, batch=batch)
    budget = Budget(
        evaluations_per_player=evaluations_per_player,
        permutations=permutations,
        link=link,
        runs=runs,
        random_state=random_state,
        batch=batch,
    )
    return ESTIMATORS[method](value, p, budget)
