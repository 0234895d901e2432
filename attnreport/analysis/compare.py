"""Two runs of the same texts side by side: two models, or fp32 against its int8 export.

Quantization is not a formality: it can move attention weights a long way (the README gives
the demo's figure). Per example we report whether the prediction held and how far attention moved, layer by
layer; over the dataset, the agreement rate and the worst cases.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from attnreport.analysis.predictions import softmax
from attnreport.core.trace import Trace


def compare_pair(a: Trace, b: Trace, labels_a: Sequence[str], labels_b: Sequence[str]) -> dict:
    """How run `b` of a text differs from run `a`."""
    if a.text != b.text:
        raise ValueError(f"comparing different texts: {a.id!r} and {b.id!r}")
    out: dict = {"id": a.id}
    if a.logits is not None and b.logits is not None and labels_a and labels_b:
        pa, pb = softmax(a.logits), softmax(b.logits)
        out["prediction_a"] = labels_a[int(pa.argmax())]
        out["prediction_b"] = labels_b[int(pb.argmax())]
        out["agree"] = out["prediction_a"] == out["prediction_b"]
        if list(labels_a) == list(labels_b):
            out["max_probability_diff"] = float(np.max(np.abs(pa - pb)))
            # how far the second run moved the first one's answer: the probability of run a's
            # predicted label, before and after (negative: less sure of it, or flipped away)
            k = int(pa.argmax())
            out["probability_a"] = float(pa[k])
            out["probability_b"] = float(pb[k])
            out["probability_shift"] = float(pb[k] - pa[k])
    same_shape = a.tokens == b.tokens and a.attentions.shape == b.attentions.shape
    out["same_tokens"] = a.tokens == b.tokens
    if same_shape:
        diff = np.abs(a.attentions.astype(np.float64) - b.attentions.astype(np.float64))
        out["max_attention_diff"] = float(diff.max())
        out["mean_attention_diff_by_layer"] = diff.mean(axis=(1, 2, 3)).tolist()
    return out


def summarise_comparison(pairs: Sequence[dict]) -> dict:
    """Agreement and attention movement over the dataset, with the examples that flipped."""
    judged = [p for p in pairs if "agree" in p]
    with_attention = [p for p in pairs if "max_attention_diff" in p]
    summary: dict = {
        "examples": len(pairs),
        "agreement": float(np.mean([p["agree"] for p in judged])) if judged else None,
        "flipped": [p["id"] for p in judged if not p["agree"]],
    }
    if with_attention:
        summary["max_attention_diff"] = float(max(p["max_attention_diff"] for p in with_attention))
        summary["mean_attention_diff_by_layer"] = np.mean(
            [p["mean_attention_diff_by_layer"] for p in with_attention], axis=0
        ).tolist()
    return summary
