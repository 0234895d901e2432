"""Phase one of a build: gather everything every page needs, before a page is written.

The page models are plain dicts of JSON-ready data; templates only lay them out.
Traces stream through one at a time: each example's bulky page data (its quantised
attentions) is spooled to a file as soon as it is made, so memory holds only the small
per-example records that report.json needs, however many examples there are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnreport import __version__
from attnreport.analysis import classification_metrics, read_row, rollout, softmax
from attnreport.analysis.explain import Explanation
from attnreport.core.jsonsafe import NonFinite, clean
from attnreport.core.modelcard import ModelCard
from attnreport.core.trace import Trace
from attnreport.site.encode import packed_unit, script_json
from attnreport.site.slugs import SlugMaker


@dataclass
class ExamplePage:
    slug: str
    #: the example's entry in report.json
    record: dict
    #: the page script's data (tokens, quantised attentions, rollout): script-safe JSON, spooled
    data_file: Path
    previous: str | None = None
    next: str | None = None
    #: the attention-flow scene: {"json": spooled script-safe JSON, "image": ..., "glb": ...}
    scene: dict | None = None


@dataclass
class SitePlan:
    title: str
    card: ModelCard
    report: dict
    examples: list[ExamplePage] = field(default_factory=list)
    #: the analysis stage's DecisionSpace (coordinates and probability volumes), for the scenes
    decision_space: object | None = None
    #: extra files of the site (site-relative path -> file to copy), e.g. rendered scenes
    files: dict[str, Path] = field(default_factory=dict)
    #: the decision-space scene on the index: {"json": spooled JSON file, "image", "glb"}
    decision_scene: dict | None = None


def _display_tokens(trace: Trace) -> list[str]:
    """What a reader sees for each token: its text span, or the special token itself."""
    shown = []
    for token, (a, b), special in zip(trace.tokens, trace.offsets, trace.special, strict=True):
        shown.append(token if special or b <= a else trace.text[a:b])
    return shown


def example_record(
    trace: Trace, card: ModelCard, slug: str, explanation: Explanation | None = None
) -> tuple[dict, dict]:
    broken = nonfinite_outputs(trace)
    attentions = trace.attentions
    if broken.get("attentions"):
        # shown as 0 (and said so on the page), never as a made-up weight
        attentions = np.nan_to_num(attentions, nan=0.0, posinf=0.0, neginf=0.0)
    roll = read_row(rollout(attentions), card.read_position)
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
    if trace.logits is not None and card.labels and not broken.get("logits"):
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
    views = {"rollout": roll}
    errors: dict[str, list[float]] = {}
    if explanation is not None:
        record["attributions"] = explanation.attributions
        record["faithfulness"] = explanation.faithfulness
        record["flow"] = explanation.flow
        record["agreement_with_occlusion"] = explanation.agreement
        record["skipped"] = explanation.skipped
        views.update({name: a["values"] for name, a in explanation.attributions.items()})
        errors = {name: a["std_error"] for name, a in explanation.attributions.items() if "std_error" in a}
        if explanation.flow is not None:
            views["flow"] = explanation.flow
    data = {
        "views": views,
        "errors": errors,
        "view_notes": _view_notes(record),
        "tokens": _display_tokens(trace),
        "special": trace.special.tolist(),
        "layers": trace.layers,
        "heads": trace.heads,
        "n": trace.n_tokens,
        "attention": packed_unit(attentions),
        "rollout_matrix": packed_unit(rollout(attentions)),
        "rollout": roll,
        "read_position": card.read_position,
    }
    derived = NonFinite()
    record = clean(record, derived)
    data = clean(data, derived)
    if derived.count:
        broken["derived_values"] = derived.count
    if broken:
        record["nonfinite"] = broken
        data["nonfinite"] = broken
    return record, data


def nonfinite_outputs(trace: Trace) -> dict[str, int]:
    """How many of the model's outputs for `trace` are NaN or infinite, by output; empty when
    all are finite. A model that gives NaN (overflow in fp16, broken weights) must not get a
    confident-looking page: its prediction is withheld and its page says what was wrong."""
    counts = {}
    outputs = {"logits": trace.logits, "attentions": trace.attentions, "hidden": trace.hidden}
    for name, values in outputs.items():
        if values is not None:
            bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
            if bad:
                counts[name] = bad
    return counts


def _view_notes(record: dict) -> dict[str, str]:
    """One line per token view saying what its numbers are."""
    notes = {"rollout": "attention rollout (Abnar & Zuidema 2020) into the read position"}
    if record.get("flow") is not None:
        notes["flow"] = "attention flow (max-flow, Abnar & Zuidema 2020) into the read position"
    for name, a in record.get("attributions", {}).items():
        what = f"{a['output']} of {a['target']!r}, absent tokens replaced by {a['baseline']}"
        if name == "shapley":
            if a["exact"]:
                how = "exact"
            elif a.get("std_error") is not None:
                how = f"sampled ({a['method']}), standard error shown on hover"
            else:
                how = f"estimated ({a['method']}), no standard error (a fit: biased where it fits poorly)"
            notes[name] = f"Shapley values of the {what}; {how}, {a['evaluations']} model evaluations"
        else:
            notes[name] = f"occlusion: drop in the {what} when the token alone is removed"
    return notes


def summarise(records: list[dict]) -> dict:
    """Dataset-level means of faithfulness and of agreement with occlusion, per method."""
    faith: dict[str, dict[str, list[float]]] = {}
    agree: dict[str, list[float]] = {}
    for r in records:
        for method, f in (r.get("faithfulness") or {}).items():
            slot = faith.setdefault(method, {"comprehensiveness": [], "sufficiency": []})
            if _finite(f["comprehensiveness"]) and _finite(f["sufficiency"]):
                slot["comprehensiveness"].append(f["comprehensiveness"])
                slot["sufficiency"].append(f["sufficiency"])
        for method, rho in (r.get("agreement_with_occlusion") or {}).items():
            if _finite(rho):
                agree.setdefault(method, []).append(rho)
    return {
        "faithfulness": {
            m: {k: float(np.mean(v)) for k, v in d.items()} | {"examples": len(d["comprehensiveness"])}
            for m, d in sorted(faith.items())
            if d["comprehensiveness"]
        },
        "agreement_with_occlusion": {
            m: {"spearman_mean": float(np.mean(v)), "examples": len(v)} for m, v in sorted(agree.items())
        },
    }


def _finite(x) -> bool:
    return x is not None and bool(np.isfinite(x))


def gather(items: Iterable[Trace | tuple], card: ModelCard, *, title: str, spool: Path) -> SitePlan:
    """Gather every page's context; `spool` is a scratch folder for the pages' data.

    `items` are traces, or (trace, explanation[, scene]) tuples when the analysis and scene
    stages ran.
    """
    spool = Path(spool)
    spool.mkdir(parents=True, exist_ok=True)
    slug_for = SlugMaker()
    pages = []
    for item in items:
        trace, explanation, scene = (*item, None, None)[:3] if isinstance(item, tuple) else (item, None, None)
        slug = slug_for(trace.id)
        record, data = example_record(trace, card, slug, explanation)
        del trace, item
        data_file = spool / f"{len(pages)}.json"
        data_file.write_text(script_json(data), encoding="utf-8")
        pages.append(ExamplePage(slug=slug, record=record, data_file=data_file, scene=scene))
    for i, page in enumerate(pages):
        page.previous = pages[i - 1].slug if i > 0 else None
        page.next = pages[i + 1].slug if i + 1 < len(pages) else None
    metrics = {}
    predicted = [p.record for p in pages if p.record["prediction"] is not None]
    if card.labels and predicted:
        # examples whose outputs were not finite have no prediction and are left out (and listed)
        m = classification_metrics(
            card.labels, [r["label"] for r in predicted], [r["prediction"] for r in predicted]
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
        "analysis": summarise([p.record for p in pages]),
        "nonfinite_examples": [p.record["id"] for p in pages if "nonfinite" in p.record],
        "examples": [p.record for p in pages],
    }
    return SitePlan(title=title, card=card, report=clean(report), examples=pages)
