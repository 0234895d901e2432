"""Attention flow in 3D: the tokens × layers lattice of one text, with its strongest edges.

Layout (token spacing is the unit):

* x = token position ``0 … n-1``;
* y = layer ``l × gap`` for ``l = 0 … L`` (0 the embeddings), ``gap = max(1.5, (n-1) / (1.5·L))``,
  so the lattice is about 3:2 wide for long texts and never squashed for short ones;
* text labels: each token below its layer-0 marker, ``input`` and ``after layer l-1`` (layers
  counted from 0, as the rest of the report) left of each row; the image
  has no box axes (their numbers would mean little here);
* z = the first principal component of that token's hidden state *within its layer*, when
  ``third_axis="pc1"``. Each layer gets its own PCA, fitted on the content tokens (special tokens
  often sit far out and would take the axis for themselves), is scaled so the content tokens
  span ``[-1, 1]``, and is multiplied by ``zspan = max(1, 0.1·(n-1))``; special tokens are
  clipped at ``±1.5·zspan``. Signs are chained so consecutive layers correlate positively, so a
  token that keeps its place keeps its depth. Per-layer scaling hides the growth of hidden-state
  norms with depth, on purpose: z compares tokens within a layer. ``third_axis="flat"`` puts
  every node at z = 0.

Between layers ``l-1`` and ``l``, each query ``i`` keeps its ``top_k`` strongest keys ``j`` in
the head-averaged attention of the ``l``-th layer (`sparsify`; its line set is named ``layer l-1``,
as the report counts layers from 0); the edge runs from ``(j, l-1)`` to
``(i, l)``, with diameter ``0.05 + 0.45·w`` and opacity ``0.15 + 0.85·w`` for weight ``w``.
The share of the attention mass those edges hold is stated in the notes (and `FlowFacts`).
The tokens' markers at layer 0 have diameter ``0.15 + 0.75·sqrt(r / max(r))`` for rollout
relevance ``r``: increasing in r, with the disc's area (beyond the smallest) proportional to it,
as the eye reads marker sizes.
The read position usually keeps much of its own rollout mass, so it is often the largest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnreport.analysis.aggregate import head_average, sparsify
from attnreport.analysis.decision import PCA3
from attnreport.core.trace import Trace
from attnreport.scenes.geometry import LineSet, Points, Scene, Text
from attnreport.scenes.palette import EDGE, RELEVANCE, UNLABELLED, hex_to_rgb

THIRD_AXES = ("pc1", "flat")
NODE_SIZE = 0.15
MARKER_SIZES = (0.15, 0.9)
EDGE_WIDTHS = (0.05, 0.45)
EDGE_OPACITIES = (0.15, 0.85)
SPECIAL_CLIP = 1.5


def layer_gap(n_tokens: int, n_layers: int) -> float:
    return max(1.5, (n_tokens - 1) / (1.5 * max(n_layers, 1)))


def depth_span(n_tokens: int) -> float:
    return max(1.0, 0.1 * (n_tokens - 1))


def hidden_depth(hidden: np.ndarray, special: np.ndarray) -> np.ndarray:
    """``hidden [L+1, n, d]`` -> ``[L+1, n]``: each layer's first principal component, content
    tokens scaled to ``[-1, 1]``, special tokens clipped at ``±SPECIAL_CLIP``, signs chained."""
    hidden = np.asarray(hidden, dtype=np.float64)
    special = np.asarray(special, dtype=bool)
    fit_on = ~special if np.count_nonzero(~special) >= 2 else np.ones(len(special), dtype=bool)
    depth = np.zeros(hidden.shape[:2])
    if hidden.shape[1] < 2:
        return depth
    for layer, states in enumerate(hidden):
        pca = PCA3().fit(states[fit_on])
        scores = (states - pca.mean_) @ pca.components_[0]
        scale = np.abs(scores[fit_on]).max()
        scores = np.clip(scores / scale, -SPECIAL_CLIP, SPECIAL_CLIP) if scale > 0 else np.zeros_like(scores)
        if layer and scores @ depth[layer - 1] < 0:
            scores = -scores
        depth[layer] = scores
    return depth


@dataclass(frozen=True)
class FlowFacts:
    """What a flow scene's notes state, as data."""

    top_k: int  # edges kept per query and layer (the asked top_k, at most the token count)
    mass_kept: float  # their share of the head-averaged attention mass
    third_axis: str  # one of `THIRD_AXES`


def flow_notes(facts: FlowFacts) -> list[str]:
    """The reader's notes under a flow scene, in words."""
    depth_note = (
        "depth: each layer's first principal component of the hidden states, scaled per layer"
        if facts.third_axis == "pc1"
        else "depth: none (flat lattice)"
    )
    return [
        f"top {facts.top_k} edges per token and layer, {facts.mass_kept:.0%} of the attention mass "
        "(heads averaged)",
        "marker size at layer 0: rollout relevance of each input token to the read position",
        depth_note,
    ]


@dataclass(frozen=True)
class Lattice:
    """What a flow scene draws: a sequence's tokens as shown, its attention ``[L, H, n, n]``, and
    optionally each node's depth ``[L+1, n]`` (None: a flat lattice)."""

    name: str
    tokens: list[str]
    attentions: np.ndarray
    depth: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.tokens)
        # float32, as a `Trace` holds them, so a lattice's edges are a trace's to the last bit
        object.__setattr__(self, "attentions", np.asarray(self.attentions, dtype=np.float32))
        if self.attentions.ndim != 4 or self.attentions.shape[2:] != (n, n):
            raise ValueError(
                f"Lattice {self.name!r}: attentions must be [L, H, {n}, {n}], "
                f"got {list(self.attentions.shape)}"
            )
        if self.depth is not None and np.shape(self.depth) != (self.attentions.shape[0] + 1, n):
            raise ValueError(
                f"Lattice {self.name!r}: depth must be [{self.attentions.shape[0] + 1}, {n}], "
                f"got {list(np.shape(self.depth))}"
            )

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def layers(self) -> int:
        return int(self.attentions.shape[0])


def flow_scene(trace: Trace, *, rollout_row: np.ndarray, top_k: int = 3, third_axis: str = "pc1") -> Scene:
    """The `Scene` of one text's attention: lattice, top-``top_k`` edges per query and layer,
    input tokens sized by ``rollout_row`` (``[n]``, the rollout row of the read position)."""
    if third_axis not in THIRD_AXES:
        raise ValueError(f"third axis {third_axis!r} is unknown; choose one of {', '.join(THIRD_AXES)}")
    depth = hidden_depth(trace.hidden, trace.special) if third_axis == "pc1" else None
    lattice = Lattice(name=trace.id, tokens=list(trace.tokens), attentions=trace.attentions, depth=depth)
    return lattice_scene(lattice, rollout_row=rollout_row, top_k=top_k)


def lattice_scene(lattice: Lattice, *, rollout_row: np.ndarray, top_k: int = 3) -> Scene:
    """`flow_scene` over a `Lattice`: any sequence's attention, with or without hidden states."""
    n, n_layers = lattice.n_tokens, lattice.layers
    third_axis = "flat" if lattice.depth is None else "pc1"
    relevance = np.asarray(rollout_row, dtype=np.float64)
    if relevance.shape != (n,):
        raise ValueError(
            f"flow scene {lattice.name!r}: rollout row has shape {list(relevance.shape)} for {n} tokens"
        )
    if np.any(relevance < 0) or not np.all(np.isfinite(relevance)):
        raise ValueError(f"flow scene {lattice.name!r}: rollout relevance must be finite and nonnegative")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")

    gap, zspan = layer_gap(n, n_layers), depth_span(n)
    z = np.zeros((n_layers + 1, n)) if lattice.depth is None else lattice.depth * zspan
    positions = np.arange(n, dtype=np.float64)
    nodes = np.stack(
        [np.tile(positions, n_layers + 1), np.repeat(np.arange(n_layers + 1) * gap, n), z.ravel()], axis=1
    )  # [(L+1)·n, 3], layer-major: node (l, i) is row l·n + i

    peak = relevance.max() if n else 0.0
    low, high = MARKER_SIZES
    markers = low + (high - low) * (np.sqrt(relevance / peak) if peak > 0 else np.zeros(n))
    sizes = np.concatenate([markers, np.full(n * n_layers, NODE_SIZE)])
    colors = np.array([hex_to_rgb(RELEVANCE)] * n + [hex_to_rgb(UNLABELLED)] * (n * n_layers)).reshape(-1, 3)
    labels = [f"{token} · rollout {r:.3f}" for token, r in zip(lattice.tokens, relevance, strict=True)]
    labels += [
        f"{token} · after layer {layer - 1}" for layer in range(1, n_layers + 1) for token in lattice.tokens
    ]
    points = Points(xyz=nodes, colors=colors, sizes=sizes, labels=labels)

    k = min(top_k, n)
    kept = sparsify(head_average(lattice.attentions), top_k=k)
    lines = []
    wide, opaque = EDGE_WIDTHS, EDGE_OPACITIES
    for layer in range(1, n_layers + 1):
        weights = kept.weights[layer - 1]
        query, key = np.nonzero(weights)  # row-major: by query, then key
        w = weights[query, key]
        segments = np.stack([nodes[(layer - 1) * n + key], nodes[layer * n + query]], axis=1)
        lines.append(
            LineSet(
                name=f"layer {layer - 1}",  # layers counted from 0, as the rest of the report
                segments=segments,
                widths=wide[0] + wide[1] * w,
                opacities=opaque[0] + opaque[1] * w,
                color=hex_to_rgb(EDGE),
            )
        )

    below = -0.35 * gap
    texts = [Text((i, below, z[0, i]), token) for i, token in enumerate(lattice.tokens)]
    left = -0.06 * (n - 1) - 1.0
    texts += [Text((left, 0.0, 0.0), "input")]
    texts += [Text((left, layer * gap, 0.0), f"after layer {layer - 1}") for layer in range(1, n_layers + 1)]
    facts = FlowFacts(top_k=k, mass_kept=float(kept.mass_kept), third_axis=third_axis)
    return Scene(
        kind="attention_flow",
        title=f"Attention flow: {lattice.name}",
        points=points,
        lines=lines,
        texts=texts,
        axis_labels=("token position", "layer", "hidden-state PC1" if third_axis == "pc1" else "depth"),
        notes=flow_notes(facts),
        frame=False,
        facts=facts,
    )
