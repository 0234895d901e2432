"""Attention aggregation: head averages, sparsified edges, and how attention decays with distance.

Sparsification keeps the strongest edges of a query's row (top-k, or top-p by cumulative
mass) and reports the share of the attention mass that survived, so a figure that draws
"the top 20% of edges" also says how much of the attention it shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def head_average(attentions: np.ndarray, *, layers: bool = False) -> np.ndarray:
    """Mean over heads: ``[L, H, n, n] -> [L, n, n]``; with ``layers=True`` also over layers."""
    a = np.asarray(attentions, dtype=np.float64)
    if a.ndim != 4:
        raise ValueError(f"attentions must be [L, H, n, n], got {list(a.shape)}")
    mean = a.mean(axis=1)
    return mean.mean(axis=0) if layers else mean


@dataclass
class Sparse:
    #: the kept weights (zeros elsewhere), same shape as the input
    weights: np.ndarray
    #: share of the total attention mass that was kept
    mass_kept: float
    #: share of the edges (nonzero weights) that was kept
    edges_kept: float


def sparsify(matrix: np.ndarray, *, top_k: int | None = None, top_p: float | None = None) -> Sparse:
    """Keep each row's ``top_k`` largest weights, or its smallest set holding ``top_p`` of the mass.

    Works on the last axis of any ``[..., n]`` array of nonnegative weights.
    """
    if (top_k is None) == (top_p is None):
        raise ValueError("give exactly one of top_k or top_p")
    w = np.asarray(matrix, dtype=np.float64)
    if np.any(w < 0):
        raise ValueError("attention weights must be nonnegative")
    order = np.argsort(-w, axis=-1, kind="stable")
    ranked = np.take_along_axis(w, order, axis=-1)
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        keep_ranked = np.arange(w.shape[-1]) < top_k
        keep_ranked = np.broadcast_to(keep_ranked, w.shape)
    else:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        total = ranked.sum(axis=-1, keepdims=True)
        before = np.cumsum(ranked, axis=-1) - ranked  # mass of the stronger edges before this one
        keep_ranked = before < top_p * total - 1e-12
    keep = np.zeros(w.shape, dtype=bool)
    np.put_along_axis(keep, order, keep_ranked, axis=-1)
    kept = np.where(keep, w, 0.0)
    total = w.sum()
    nonzero = np.count_nonzero(w)
    return Sparse(
        weights=kept,
        mass_kept=float(kept.sum() / total) if total > 0 else 1.0,
        edges_kept=float(np.count_nonzero(kept) / nonzero) if nonzero else 1.0,
    )


def distance_profile(attentions: np.ndarray, *, special: np.ndarray | None = None) -> np.ndarray:
    """Mean attention weight at each token distance ``|i - j|``, per layer: ``[L, n]``.

    Averaged over heads and over all (query, key) pairs at that distance; special tokens are
    left out as queries and keys when `special` is given (they attract attention for reasons
    of their own and would hide the decay). Distances with no pair are NaN.
    """
    a = head_average(attentions)
    n = a.shape[-1]
    keep = np.ones(n, dtype=bool) if special is None else ~np.asarray(special, dtype=bool)
    pair = keep[:, None] & keep[None, :]
    dist = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    counts = np.bincount(dist[pair], minlength=n).astype(np.float64)
    out = np.full((a.shape[0], n), np.nan)
    for layer in range(a.shape[0]):
        sums = np.bincount(dist[pair], weights=a[layer][pair], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[layer] = np.where(counts > 0, sums / counts, np.nan)
    return out
