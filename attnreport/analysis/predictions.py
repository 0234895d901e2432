"""Predictions from logits, and classification metrics over a dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class Metrics:
    labels: list[str]
    #: examples that carry a true label the model knows
    labelled: int
    accuracy: float | None
    #: confusion[i][j]: true label i predicted as j
    confusion: list[list[int]]
    true_counts: dict[str, int]
    predicted_counts: dict[str, int]
    #: true labels in the data that the model does not know (not counted in accuracy)
    unknown_labels: list[str]


def classification_metrics(
    labels: Sequence[str], truth: Sequence[str | None], predicted: Sequence[str]
) -> Metrics:
    index = {name: i for i, name in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    unknown: set[str] = set()
    for t, p in zip(truth, predicted, strict=True):
        if t is None:
            continue
        if t not in index:
            unknown.add(t)
            continue
        confusion[index[t], index[p]] += 1
    labelled = int(confusion.sum())
    return Metrics(
        labels=list(labels),
        labelled=labelled,
        accuracy=float(np.trace(confusion) / labelled) if labelled else None,
        confusion=confusion.tolist(),
        true_counts={name: int(confusion[i].sum()) for i, name in enumerate(labels)},
        predicted_counts={name: int(sum(1 for p in predicted if p == name)) for name in labels},
        unknown_labels=sorted(unknown),
    )
