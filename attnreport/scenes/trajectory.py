"""Hidden-state trajectories: each token's path through the layers of one text, in one 3D space.

The space is the first three principal components of the text's hidden states at every layer
(``hidden [L+1, n, d]`` stacked to ``[(L+1)·n, d]``), fitted on the content tokens (special
tokens often sit far out and would take the axes for themselves; with fewer than two content
tokens, on every token) and applied to every token. Token ``i``'s polyline runs through its
projected states ``0 … L``; the segment from state ``l-1`` to ``l`` is one line set per ``l``,
named by the layer that takes that step as the rest of the report counts (``"layer l-1"``),
its colour stepping from light (the embeddings) to dark (the last layer), so the direction of
travel reads without arrows. Markers sit at every state; the embeddings' (where tokens are
still far apart) carry the token's text when the text is short enough to label.

The notes give the share of the variance the three axes hold, and the mean norm of the content
tokens' states at the first and last layer (where norms grow with depth, the deep layers take
more of the axes); `TrajectoryFacts` holds the same as data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnreport.analysis.decision import PCA3, state_name
from attnreport.core.trace import Trace
from attnreport.scenes.geometry import LineSet, Points, Scene, Text
from attnreport.scenes.palette import EDGE, hex_to_rgb

#: the lightest colour of a path (the embeddings' end), mixed towards `EDGE` layer by layer
START = (0xC8, 0xD6, 0xE5)
#: tokens labelled in the scene (beyond this, hover labels only)
MAX_TEXTS = 40
#: line width and marker diameter as fractions of the points' box diagonal
WIDTH, MARKER = 0.004, 0.012


def layer_colors(n_layers: int) -> np.ndarray:
    """``[L+1, 3]`` 0-255 colours from `START` (layer 0) to `EDGE` (layer L)."""
    t = np.linspace(0.0, 1.0, n_layers + 1)[:, None]
    return np.round((1 - t) * np.array(START) + t * np.array(hex_to_rgb(EDGE))).astype(np.int64)


def trajectories(hidden: np.ndarray, special: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``hidden [L+1, n, d]`` -> the paths ``[L+1, n, 3]`` in one PCA space, and its explained
    variance ratios ``[3]`` (see the module docstring for the fit)."""
    hidden = np.asarray(hidden, dtype=np.float64)
    special = np.asarray(special, dtype=bool)
    states = hidden.reshape(-1, hidden.shape[-1])
    fit_on = ~special if np.count_nonzero(~special) >= 2 else np.ones(len(special), dtype=bool)
    rows = np.tile(fit_on, hidden.shape[0])
    if np.count_nonzero(rows) < 2:
        return np.zeros(hidden.shape[:2] + (3,)), np.zeros(3)
    pca = PCA3().fit(states[rows])
    return pca.transform(states).reshape(hidden.shape[0], hidden.shape[1], 3), pca.explained_variance_ratio_


@dataclass(frozen=True)
class TrajectoryFacts:
    """What a trajectory scene's notes state, as data."""

    variance: tuple[float, ...]  # the three axes' shares of the variance
    fitted_on_content: bool  # the PCA saw the content tokens only (else every token)
    layers: int
    norms: tuple[float, float]  # mean norm of the content tokens' states: embeddings, last layer


def trajectory_notes(facts: TrajectoryFacts) -> list[str]:
    """The reader's notes under a trajectory scene, in words."""
    fitted = "content tokens" if facts.fitted_on_content else "all tokens"
    first, last = facts.norms
    return [
        f"axes: the first three principal components of this text's hidden states at every layer "
        f"(fitted on the {fitted}), {float(np.sum(facts.variance)):.0%} of the variance",
        f"each line is one token's path from the embeddings (light) to the state after the last layer, "
        f"{facts.layers - 1} (dark)",
        f"mean norm of the states: {first:.3g} at the embeddings, {last:.3g} after the last layer",
    ]


def trajectory_scene(trace: Trace) -> Scene:
    """The `Scene` of one text's hidden-state trajectories (one polyline per token)."""
    n, n_layers = trace.n_tokens, trace.layers
    paths, variance = trajectories(trace.hidden, trace.special)
    colors = layer_colors(n_layers)
    xyz = paths.reshape(-1, 3)  # layer-major: state (l, i) is row l·n + i
    extent = float(np.linalg.norm(np.ptp(xyz, axis=0))) if n else 1.0
    extent = extent if extent > 0 else 1.0
    points = Points(
        xyz=xyz,
        colors=np.repeat(colors, n, axis=0),
        sizes=np.full(len(xyz), MARKER * extent),
        labels=[f"{token} · {state_name(layer)}" for layer in range(n_layers + 1) for token in trace.tokens],
    )
    lines = [
        LineSet(
            name=f"layer {layer - 1}",  # the step layer l - 1 takes, counted from 0 as elsewhere
            segments=np.stack([paths[layer - 1], paths[layer]], axis=1),
            widths=np.full(n, WIDTH * extent),
            opacities=np.full(n, 0.85),
            color=tuple(int(c) for c in colors[layer]),
        )
        for layer in range(1, n_layers + 1)
    ]
    texts = [Text(paths[0, i], token) for i, token in enumerate(trace.tokens)] if n <= MAX_TEXTS else []
    content = ~np.asarray(trace.special, dtype=bool)
    fitted_on_content = bool(np.count_nonzero(content) >= 2)
    if not content.any():
        content = np.ones(n, dtype=bool)
    norms = np.linalg.norm(np.asarray(trace.hidden, dtype=np.float64)[:, content], axis=-1).mean(axis=1)
    facts = TrajectoryFacts(
        variance=tuple(float(v) for v in variance),
        fitted_on_content=fitted_on_content,
        layers=n_layers,
        norms=(float(norms[0]), float(norms[-1])),
    )
    return Scene(
        kind="hidden_trajectories",
        title=f"Hidden-state trajectories: {trace.id}",
        points=points,
        lines=lines,
        texts=texts,
        axis_labels=tuple(f"PC{i + 1} ({v:.1%})" for i, v in enumerate(variance)),
        notes=trajectory_notes(facts),
        facts=facts,
    )
