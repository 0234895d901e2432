"""Attention rollout, exactly as Abnar & Zuidema (2020), "Quantifying Attention Flow in Transformers".

Per layer: Â = residual·I + (1 − residual)·mean over heads of A, rows renormalised;
then the layers are multiplied from the first up: R = Â_L · … · Â_1. Row i of R says
how much each input token contributes to position i at the top of the model.
"""

from __future__ import annotations

import numpy as np


def rollout(attentions: np.ndarray, *, residual: float = 0.5) -> np.ndarray:
    """``attentions [L, H, n, n]`` -> rollout matrix ``[n, n]`` (rows sum to 1)."""
    attentions = np.asarray(attentions, dtype=np.float64)
    if attentions.ndim != 4 or attentions.shape[-1] != attentions.shape[-2]:
        raise ValueError(f"attentions must be [L, H, n, n], got {list(attentions.shape)}")
    n = attentions.shape[-1]
    eye = np.eye(n)
    result = eye
    for layer in attentions:
        a = residual * eye + (1.0 - residual) * layer.mean(axis=0)
        a = a / a.sum(axis=-1, keepdims=True)
        result = a @ result
    return result


def read_row(matrix: np.ndarray, read_position: str) -> np.ndarray:
    """The row for the position the prediction is read from: first (encoders) or last (causal)."""
    return np.asarray(matrix)[0 if read_position == "first" else -1]
