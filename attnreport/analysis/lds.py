"""The linear datamodeling score: how well attributions, read as a linear model, predict held-out runs.

ERASER's comprehensiveness and sufficiency (`faithfulness`) test an attribution's *ranking* on
a few nested coalitions. The linear datamodeling score (Park et al. 2023, "TRAK"; used to score
ContextCite, Cohen-Wang et al. 2024) tests its *values* on random ones: read the attributions
``w`` as a linear model, predicted ``v(S) ≈ b + Σ_{i∈S} w_i``, draw fresh random ablations
(each unit kept with probability 1/2, none of them a coalition an estimator was fitted on), run
the model on them, and take the Spearman rank correlation between predicted and actual values.
1: the attributions order every held-out ablation as the model does; 0: no better than chance.
The intercept ``b`` shifts every prediction alike, so it drops out of a rank correlation.

The score is a property of the attributions *and* the ablation distribution: a surrogate fitted
on half-ablations (`shapley.lasso`) is scored on the regime it was fitted to, Kernel SHAP's
values weight every coalition size (its kernel favours the nearly empty and nearly full ones).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from attnreport.analysis.shapley.lasso import random_ablations

__all__ = ["heldout_ablations", "linear_datamodeling_score"]

#: the held-out stream: ablations drawn from (seed, this), never from the seed estimators use
HELDOUT_STREAM = 0x1D5


def heldout_ablations(
    players: int, count: int, *, random_state: int = 0, exclude: np.ndarray | None = None
) -> np.ndarray:
    """``count`` random half-ablations ``[count, p]`` for scoring, drawn from a stream of their own
    (independent of every estimator's draws with the same seed) and none of them a row of
    ``exclude`` (the coalitions already run: what the estimators were fitted on)."""
    stream = np.random.default_rng([int(random_state), HELDOUT_STREAM])
    return random_ablations(players, count, keep=0.5, random_state=stream, exclude=exclude)


def linear_datamodeling_score(
    values: np.ndarray, masks: np.ndarray, actual: np.ndarray
) -> float | np.ndarray:
    """Spearman correlation between ``masks @ values`` and ``actual`` over the masks' rows.

    ``values`` is one attribution ``[p]`` or several ``[k, p]`` (one per game or method); ``masks``
    ``[m, p]`` (True: the unit kept); ``actual`` the model's values ``[m]``, or ``[m, k]`` with one
    column per row of ``values``. Returns a float (or ``[k]``); NaN where either side is constant
    (all-zero attributions predict nothing, and a rank correlation is then undefined).
    """
    values = np.asarray(values, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    actual = np.asarray(actual, dtype=np.float64)
    single = values.ndim == 1
    w = values[None] if single else values
    y = actual[:, None] if actual.ndim == 1 else actual
    if masks.ndim != 2 or w.shape[1] != masks.shape[1] or y.shape != (len(masks), len(w)):
        raise ValueError(
            f"linear_datamodeling_score needs values [k, p], masks [m, p] and actual [m, k]; got "
            f"{list(values.shape)}, {list(masks.shape)} and {list(actual.shape)}"
        )
    predicted = masks.astype(np.float64) @ w.T
    scores = np.array([_spearman(predicted[:, j], y[:, j]) for j in range(len(w))])
    return float(scores[0]) if single else scores


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the ranks (ties share their mean rank); NaN when either is constant.

    Values equal up to float rounding are ties: the ranks of rounding noise are no signal (two
    ablations that differ by a unit of zero attribution predict the same value)."""
    a, b = _settle(a), _settle(b)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    ra, rb = rankdata(a) - (len(a) + 1) / 2, rankdata(b) - (len(b) + 1) / 2
    return float((ra @ rb) / np.sqrt((ra @ ra) * (rb @ rb)))


def _settle(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to 10 digits of its largest magnitude."""
    scale = float(np.abs(x).max()) if len(x) else 0.0
    return x if scale == 0 else np.round(x / scale, 10) * scale
