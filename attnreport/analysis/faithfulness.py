"""Faithfulness of a token ranking: comprehensiveness and sufficiency (ERASER, DeYoung et al. 2020).

For the top k% of tokens by an explanation's ranking, at k in ``BINS``:

- comprehensiveness: f(x) − f(x without those tokens): a faithful ranking names tokens whose
  removal hurts the prediction (higher is better);
- sufficiency: f(x) − f(only those tokens): a faithful ranking names tokens that alone keep
  the prediction (lower is better).

Each is averaged over the bins (AOPC), and compared with random rankings of the same text,
so a reader sees whether an explanation beats chance on this model. "Removed" means
replaced by the declared baseline token, the same convention as the Shapley values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BINS = (0.01, 0.05, 0.10, 0.20, 0.50)

ValueFunction = Callable[[np.ndarray], np.ndarray]


@dataclass
class Faithfulness:
    comprehensiveness: float
    sufficiency: float
    #: per-bin values, in the order of `bins`
    comprehensiveness_bins: list[float]
    sufficiency_bins: list[float]
    bins: list[float]
    #: random rankings only: the standard error of their mean comprehensiveness and sufficiency
    #: (the spread of one ranking's value over the samples, over the square root of their count),
    #: the noise an explanation's margin over random is read against (`analysis.trust`)
    comprehensiveness_std_error: float | None = None
    sufficiency_std_error: float | None = None

    def to_dict(self) -> dict:
        out = {
            "comprehensiveness": self.comprehensiveness,
            "sufficiency": self.sufficiency,
            "comprehensiveness_bins": self.comprehensiveness_bins,
            "sufficiency_bins": self.sufficiency_bins,
            "bins": self.bins,
        }
        if self.comprehensiveness_std_error is not None:
            out["comprehensiveness_std_error"] = self.comprehensiveness_std_error
            out["sufficiency_std_error"] = self.sufficiency_std_error
        return out


def top_counts(players: int, bins: tuple[float, ...] = BINS) -> list[int]:
    """How many tokens make the top k%: at least one, at most all."""
    return [min(players, max(1, math.ceil(k * players))) for k in bins]


def _masks(order: np.ndarray, counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    p = len(order)
    keep_rest = np.ones((len(counts), p), dtype=bool)
    only_top = np.zeros((len(counts), p), dtype=bool)
    for row, k in enumerate(counts):
        keep_rest[row, order[:k]] = False
        only_top[row, order[:k]] = True
    return keep_rest, only_top


def faithfulness(value: ValueFunction, scores: np.ndarray, *, bins: tuple[float, ...] = BINS) -> Faithfulness:
    """Comprehensiveness and sufficiency of the ranking by `scores` (higher = more important)."""
    scores = np.asarray(scores, dtype=np.float64)
    p = len(scores)
    if p == 0:
        raise ValueError("faithfulness needs at least one token")
    order = np.argsort(-scores, kind="stable")
    return _faithfulness_of_orders(value, order[None], bins)[0]


def random_faithfulness(
    value: ValueFunction, players: int, *, samples: int = 8, random_state: int = 0, bins=BINS
) -> Faithfulness:
    """The same measures for random rankings, averaged: the bar an explanation must clear, with
    the standard error of that bar (from two samples on)."""
    rng = np.random.default_rng(random_state)
    orders = np.stack([rng.permutation(players) for _ in range(samples)])
    results = _faithfulness_of_orders(value, orders, bins)
    comp = np.mean([r.comprehensiveness_bins for r in results], axis=0)
    suff = np.mean([r.sufficiency_bins for r in results], axis=0)
    errors = {}
    if samples > 1:
        errors = {
            f"{k}_std_error": float(np.std([getattr(r, k) for r in results], ddof=1) / math.sqrt(samples))
            for k in ("comprehensiveness", "sufficiency")
        }
    return Faithfulness(
        float(comp.mean()), float(suff.mean()), comp.tolist(), suff.tolist(), list(bins), **errors
    )


def _faithfulness_of_orders(value: ValueFunction, orders: np.ndarray, bins) -> list[Faithfulness]:
    players = orders.shape[1]
    counts = top_counts(players, bins)
    blocks = [np.ones((1, players), dtype=bool)]
    for order in orders:
        blocks.extend(_masks(order, counts))
    values = value(np.concatenate(blocks))  # one batched call for every ranking and bin
    full = values[0]
    results = []
    b = len(counts)
    for r in range(len(orders)):
        start = 1 + 2 * b * r
        comp = full - values[start : start + b]
        suff = full - values[start + b : start + 2 * b]
        results.append(
            Faithfulness(float(comp.mean()), float(suff.mean()), comp.tolist(), suff.tolist(), list(bins))
        )
    return results
