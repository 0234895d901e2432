"""Phase one of a build: gather everything every page needs, before a byte is written.

The page models are plain dicts of JSON-ready data; templates only lay them out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from attnreport import __version__
from attnreport.analysis import classification_metrics, read_row, rollout, softmax
from attnreport.core.modelcard import ModelCard
from attnreport.core.trace import Trace
from attnreport.site.encode import clean, quantize_unit
from attnreport.site.slugs import unique_slugs

SNIPPET = 140


@dataclass
class ExamplePage:
    slug: str
    #: the example's entry in report.json
    record: dict
    #: data for the page's script (tokens, quantised attentions, rollout)
    data: dict
    previous: str | None = None
    next: str | None = None


@dataclass
class SitePlan:
    title: str
    card: ModelCard
    report: dict
    examples: list[ExamplePage] = field(default_factory=list)


def _display_tokens(trace: Trace) -> list[str]:
    """What a reader sees for each token: its text span, or the special token itself."""
    shown = []
    for token, (a, b), special in zip(trace.tokens, trace.offsets, trace.special, strict=True):
        shown.append(token if special or b <= a else trace.text[a:b])
    return shown


def example_record(trace: Trace, card: ModelCard, slug: str) -> tuple[dict, dict]:
    roll = read_row(rollout(trace.attentions), card.read_position)
    record = {
        "id": trace.id,
        "page": f"examples/{slug}.html",
        "text": trace.text,
        "tokens": list(trace.tokens),
        "offsets": trace.offsets.tolist(),
        "special": trace.special.tolist(),
        "label": trace.label,
        "rollout": roll,
        "windows": [list(w) for w in trace.windows],
    }
    if trace.logits is not None and card.labels:
        probs = softmax(trace.logits)
        best = int(np.argmax(probs))
        record["prediction"] = card.labels[best]
        record["probabilities"] = {name: float(p) for name, p in zip(card.labels, probs, strict=True)}
        record["confidence"] = float(probs[best])
        record["correct"] = None if trace.label is None else trace.label == card.labels[best]
    else:
        record["prediction"] = None
        record["probabilities"] = {}
        record["confidence"] = None
        record["correct"] = None
    data = {
        "tokens": _display_tokens(trace),
        "special": trace.special.tolist(),
        "layers": trace.layers,
        "heads": trace.heads,
        "n": trace.n_tokens,
        "attention": {
            "encoding": "uint8-base64",
            "scale": 1 / 255,
            "shape": list(trace.attentions.shape),
            "data": quantize_unit(trace.attentions),
        },
        "rollout_matrix": {
            "encoding": "uint8-base64",
            "scale": 1 / 255,
            "shape": [trace.n_tokens] * 2,
            "data": quantize_unit(rollout(trace.attentions)),
        },
        "rollout": roll,
        "read_position": card.read_position,
    }
    return clean(record), clean(data)


def gather(traces: Iterable[Trace], card: ModelCard, *, title: str) -> SitePlan:
    traces = list(traces)
    slugs = unique_slugs([t.id for t in traces])
    pages = []
    for trace, slug in zip(traces, slugs, strict=True):
        record, data = example_record(trace, card, slug)
        pages.append(ExamplePage(slug=slug, record=record, data=data))
    for i, page in enumerate(pages):
        page.previous = pages[i - 1].slug if i > 0 else None
        page.next = pages[i + 1].slug if i + 1 < len(pages) else None
    metrics = {}
    if card.labels and pages and pages[0].record["prediction"] is not None:
        m = classification_metrics(
            card.labels, [p.record["label"] for p in pages], [p.record["prediction"] for p in pages]
        )
        metrics = {
            "accuracy": m.accuracy,
            "labelled": m.labelled,
            "confusion": m.confusion,
            "true_counts": m.true_counts,
            "predicted_counts": m.predicted_counts,
            "unknown_labels": m.unknown_labels,
            "examples": len(pages),
        }
    report = {
        "schema": 1,
        "title": title,
        "generator": f"attnreport {__version__}",
        "model": {
            "architecture": card.architecture,
            "task": card.task,
            "layers": card.layers,
            "heads": card.heads,
            "hidden_size": card.hidden_size,
            "max_positions": card.max_positions,
            "causal": card.causal,
            "labels": card.labels,
            "read_position": card.read_position,
            "onnx": {
                "opset": card.opset,
                "max_abs_diff_to_pytorch": card.max_abs_diff,
                "weights_sha256": card.weights_sha256,
                "quantized": card.quantized,
            },
            "notes": card.extra.get("notes", {}),
        },
        "metrics": metrics,
        "examples": [p.record for p in pages],
    }
    return SitePlan(title=title, card=card, report=clean(report), examples=pages)
