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


def distance_bins(longest: int) -> list[tuple[int, int]]:
    """Distance bins ``[lo, hi]`` (inclusive) up to ``longest - 1``: 1, 2, 3, 4, then doubling
    (5-8, 9-16, ...), so short-range detail and the long tail both fit in a dozen numbers."""
    bins, lo = [], 1
    while lo < longest:
        hi = lo if lo <= 4 else 2 * (lo - 1)
        bins.append((lo, min(hi, longest - 1)))
        lo = hi + 1
    return bins


class DistanceDecay:
    """How attention falls off with token distance over a whole dataset, per layer, streamed.

    Each (query, key) pair at distance ``d = |i - j| >= 1`` between content tokens contributes
    its head-averaged weight times the number of keys the query can see (``m_i``: the row's
    length, the causal prefix, or its window): 1 means the weight uniform attention would give,
    so texts of different lengths share one scale. `profile` is the mean of that over the pairs
    in each distance bin. Keys a query cannot see (outside its window, or in its future) are
    not pairs, so windows do not fake a decay: the tail simply has fewer pairs (`pairs`).
    """

    def __init__(self, layers: int, max_tokens: int, *, causal: bool = False) -> None:
        self.layers, self.causal = layers, causal
        self.bins = distance_bins(max(max_tokens, 2))
        edges = np.array([lo for lo, _ in self.bins] + [self.bins[-1][1] + 1])
        # distance -> bin index; distance 0 (self) and beyond the last bin -> -1
        self._bin_of = np.full(edges[-1] + 1, -1)
        for b, (lo, hi) in enumerate(self.bins):
            self._bin_of[lo : hi + 1] = b
        self.sums = np.zeros((layers, len(self.bins)))
        self.pairs = np.zeros(len(self.bins), dtype=np.int64)

    def add(self, attentions: np.ndarray, special: np.ndarray) -> None:
        a = head_average(attentions)  # [L, n, n]
        n = a.shape[-1]
        if a.shape[0] != self.layers:
            raise ValueError(f"attentions have {a.shape[0]} layers, this profile {self.layers}")
        visible = (a > 0).any(axis=0)  # windows leave exact zeros outside; softmax never does inside
        if self.causal:
            visible &= np.tri(n, dtype=bool)
        content = ~np.asarray(special, dtype=bool)
        dist = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
        dist = np.minimum(dist, self._bin_of.size - 1)
        pair = visible & content[:, None] & content[None, :] & (dist > 0)
        bins = self._bin_of[dist[pair]]
        ok = bins >= 0
        bins = bins[ok]
        scale = visible.sum(axis=-1, keepdims=True).astype(np.float64)  # m_i per query
        self.pairs += np.bincount(bins, minlength=len(self.bins))
        for layer in range(self.layers):
            relative = (a[layer] * scale)[pair][ok]
            self.sums[layer] += np.bincount(bins, weights=relative, minlength=len(self.bins))

    def profile(self) -> dict:
        """``{"bins": [[lo, hi], ...], "pairs": [...], "relative_weight": [L][bins]}``, None
        where a bin has no pair; 1.0 is the uniform weight."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self.pairs > 0, self.sums / np.maximum(self.pairs, 1), np.nan)
        used = [b for b in range(len(self.bins)) if self.pairs[b] > 0]
        last = used[-1] + 1 if used else 0
        return {
            "bins": [list(b) for b in self.bins[:last]],
            "pairs": [int(p) for p in self.pairs[:last]],
            "relative_weight": [[None if np.isnan(x) else float(x) for x in row[:last]] for row in mean],
        }
