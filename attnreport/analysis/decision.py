"""The decision space: examples in 3D (PCA of a pooled hidden state) with the model's own
decision function evaluated on that 3D slice.

A 3D picture of a 384-dimensional space can mislead, so the slice is checked: for each
example, the class the model's head gives at the example's *projected* point is compared
with the model's real prediction. `slice_agreement` is the share that agree; a low value
says "do not read the boundaries in this picture literally".

Where the model has no head of its own, a logistic-regression probe on the labels stands
in for it, and `source` says "probe". At a layer the head does not read (the per-layer
decision spaces), a probe fitted to the model's own predictions on that layer's pooled states
draws the boundaries: how far the final decision is already linearly readable there. Its
`probe_target` says which the probe was fitted to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attnreport.analysis.predictions import softmax

POOLINGS = ("first", "last", "mean")

#: pooled hidden states [m, d] -> logits [m, C]
HeadFunction = Callable[[np.ndarray], np.ndarray]


def state_name(layer: int, layers: int | None = None) -> str:
    """Where hidden state `layer` sits, counting layers from 0 as the attention views do: state 0
    is "at the embeddings", state l "after layer l - 1", -1 "after the last layer" (the number
    said where the model's `layers` are known); other negative states count from the end."""
    if layers is not None:
        layer = layer % (layers + 1)
        if layer == layers:
            return f"after the last layer ({layers - 1})"
    if layer == 0:
        return "at the embeddings"
    if layer == -1:
        return "after the last layer"
    if layer < 0:
        return f"after the last layer but {-layer - 1}"
    return f"after layer {layer - 1}"


def pool(hidden: np.ndarray, special: np.ndarray, *, pooling: str, layer: int = -1) -> np.ndarray:
    """One vector per example from ``hidden [L+1, n, d]``: the first or last token, or the mean
    over the content tokens. A copy, never a view: the analysis keeps one vector per example, and
    a view would keep that example's whole ``hidden`` alive with it (memory growing with the dataset)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r} is unknown; choose one of {', '.join(POOLINGS)}")
    states = np.asarray(hidden)[layer]
    if pooling == "first":
        return states[0].copy()
    if pooling == "last":
        return states[-1].copy()
    content = ~np.asarray(special, dtype=bool)
    return states[content].mean(axis=0) if content.any() else states.mean(axis=0)


class PCA3:
    """PCA to 3 components with deterministic signs (largest loading of each axis positive)."""

    def fit(self, points: np.ndarray) -> PCA3:
        x = np.asarray(points, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"PCA needs [m >= 2, d] points, got {list(x.shape)}")
        self.mean_ = x.mean(axis=0)
        centred = x - self.mean_
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        k = min(3, vt.shape[0])
        components = vt[:k]
        signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
        self.components_ = components * signs[:, None]
        variance = s**2 / max(1, len(x) - 1)
        total = variance.sum()
        self.explained_variance_ratio_ = variance[:k] / total if total > 0 else np.zeros(k)
        if k < 3:  # fewer examples than axes: pad with zero axes so coordinates are still 3D
            pad = 3 - k
            self.components_ = np.vstack([self.components_, np.zeros((pad, x.shape[1]))])
            self.explained_variance_ratio_ = np.concatenate([self.explained_variance_ratio_, np.zeros(pad)])
        return self

    def transform(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=np.float64) - self.mean_) @ self.components_.T

    def inverse_transform(self, coords: np.ndarray) -> np.ndarray:
        return np.asarray(coords, dtype=np.float64) @ self.components_ + self.mean_


@dataclass
class DecisionSpace:
    layer: int
    pooling: str
    source: str  # "model_head" or "probe"
    labels: list[str]
    explained_variance: list[float]
    coords: np.ndarray  # [N, 3]
    #: grid axes: the coordinates of the grid points along each of the 3 axes
    axes: list[np.ndarray]
    #: per-class probability volumes [C, g, g, g] of the head on the slice
    volumes: np.ndarray
    #: the head's class at each example's projected point
    slice_predictions: np.ndarray
    slice_agreement: float
    #: what a probe was fitted to: "label" or "prediction" (None for the model's head)
    probe_target: str | None = None
    #: which examples (indices in the order they streamed) the points are, ``[N]``; None: all,
    #: in order. Examples whose prediction or pooled state is not finite have no point.
    rows: np.ndarray | None = None
    #: examples left out of the space because their logits or pooled state were not finite
    withheld: int = 0

    def layer_index(self, layers: int) -> int:
        """The hidden layer as an absolute index (0: the embeddings) of a model with `layers` layers."""
        return self.layer % (layers + 1)

    def summary(self) -> dict:
        return {
            "layer": self.layer,
            "pooling": self.pooling,
            "source": self.source,
            "probe_target": self.probe_target,
            "explained_variance": [float(v) for v in self.explained_variance],
            "slice_agreement": float(self.slice_agreement),
            "grid": int(self.volumes.shape[1]),
            "withheld": int(self.withheld),
        }


def fit_probe(pooled: np.ndarray, labels: list[str], classes: list[str]) -> HeadFunction:
    """A logistic-regression probe on the labels: the stand-in head of a model without one."""
    from sklearn.linear_model import LogisticRegression

    y = np.array([classes.index(label) for label in labels])
    probe = LogisticRegression(max_iter=2000, random_state=0).fit(pooled, y)

    def head(points: np.ndarray) -> np.ndarray:
        # log-probabilities are logits whose softmax is the probe's probabilities
        logits = np.full((len(points), len(classes)), -1e9)
        # (probabilities that underflow to 0 far from the data stay finite: log(0) would warn)
        probabilities = probe.predict_proba(np.asarray(points, dtype=np.float64))
        logits[:, probe.classes_] = np.log(np.maximum(probabilities, 1e-300))
        return logits

    return head


def decision_space(
    pooled: np.ndarray,
    predictions: np.ndarray,
    head: HeadFunction,
    *,
    labels: list[str],
    layer: int = -1,
    pooling: str = "first",
    source: str = "model_head",
    probe_target: str | None = None,
    grid: int = 24,
    margin: float = 0.15,
    batch: int = 8192,
    rows: np.ndarray | None = None,
    withheld: int = 0,
) -> DecisionSpace:
    """PCA of `pooled` [N, d] and the head's class probabilities on a grid over the 3D slice.

    `predictions` are the model's real predicted class indices, for the slice agreement;
    `rows` and `withheld` say which examples the points are (see `DecisionSpace`).
    """
    pooled = np.asarray(pooled, dtype=np.float64)
    predictions = np.asarray(predictions)
    if len(predictions) != len(pooled):
        raise ValueError(f"{len(pooled)} pooled vectors but {len(predictions)} predictions")
    pca = PCA3().fit(pooled)
    coords = pca.transform(pooled)
    low, high = coords.min(axis=0), coords.max(axis=0)
    span = np.maximum(high - low, 1e-6)
    axes = [
        np.linspace(lo - margin * s, hi + margin * s, grid) for lo, hi, s in zip(low, high, span, strict=True)
    ]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    probs = np.concatenate(
        [
            softmax(head(pca.inverse_transform(mesh[s : s + batch]).astype(np.float32)))
            for s in range(0, len(mesh), batch)
        ]
    )
    volumes = probs.T.reshape(len(labels), grid, grid, grid)
    on_slice = softmax(head(pca.inverse_transform(coords).astype(np.float32))).argmax(axis=1)
    return DecisionSpace(
        layer=layer,
        pooling=pooling,
        source=source,
        labels=list(labels),
        explained_variance=pca.explained_variance_ratio_.tolist(),
        coords=coords,
        axes=axes,
        volumes=volumes.astype(np.float32),
        slice_predictions=on_slice,
        slice_agreement=float(np.mean(on_slice == predictions)) if len(predictions) else 0.0,
        probe_target=probe_target,
        rows=None if rows is None else np.asarray(rows, dtype=np.int64),
        withheld=withheld,
    )
