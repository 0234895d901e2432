"""``report.json``, the machine-readable report: made here from the stages' typed results, and only here.

Pages and templates read the report this module makes; no other module adds to it. Its shape is
documented in the README (schema 1); indices are 0-based and lists over tokens have one value
per token. An attribution over larger units (words, sentences, lines) says so: its ``unit``, its
``units`` as character spans, and one value per unit.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from attnreport import __version__
from attnreport.analysis.decision import DecisionSpace
from attnreport.analysis.generation import SEGMENTS, GenerationAnalysis
from attnreport.analysis.results import AnalysisResults, Comparison, ExampleAnalysis
from attnreport.core.jsonsafe import NonFinite, clean
from attnreport.core.modelcard import ModelCard
from attnreport.site.encode import dumps

#: the report's file name at the site root (its presence marks a folder as an attnreport site)
REPORT_FILE = "report.json"

SCHEMA = 1


def example_entry(example: ExampleAnalysis, page: str, *, page_nonfinite: int = 0) -> dict:
    """The report's entry for one example, whose page is at `page` (site-relative).

    `page_nonfinite` counts the non-finite values met while making the page's own data; with the
    entry's, they make ``nonfinite.derived_values``.
    """
    trace, prediction, explanation = example.trace, example.prediction, example.explanation
    entry = {
        "id": trace.id,
        "page": page,
        "text": trace.text,
        "tokens": list(trace.tokens),
        "offsets": trace.offsets.tolist(),
        "special": trace.special.tolist(),
        "label": trace.label,
        "rollout": example.rollout_row,
        "windows": [list(w) for w in trace.windows],
        "prediction": None,
        "probabilities": {},
        "confidence": None,
        "correct": None,
    }
    if prediction is not None:
        entry["prediction"] = prediction.label
        entry["probabilities"] = dict(zip(prediction.labels, prediction.probabilities.tolist(), strict=True))
        entry["confidence"] = prediction.confidence
        entry["correct"] = None if trace.label is None else trace.label == prediction.label
    if explanation is not None:
        entry["attributions"] = explanation.attributions
        entry["faithfulness"] = explanation.faithfulness
        entry["flow"] = explanation.flow
        entry["agreement_with_occlusion"] = explanation.agreement
        entry["skipped"] = explanation.skipped
        entry["model_runs"] = explanation.model_runs
    derived = NonFinite()
    entry = clean(entry, derived)
    broken = dict(example.nonfinite)
    if derived.count + page_nonfinite:
        broken["derived_values"] = derived.count + page_nonfinite
    if broken:
        entry["nonfinite"] = broken
    return entry


def _top(ids, probabilities, tokens) -> list[dict]:
    return [
        {"token": token, "id": int(i), "probability": float(p)}
        for i, p, token in zip(ids, probabilities, tokens, strict=True)
    ]


def _segments(shares) -> dict:
    """One step's attention by segment: the mean over layers, and each layer's."""
    return {
        **{name: float(v) for name, v in zip(SEGMENTS, shares.mean(axis=0), strict=True)},
        "by_layer": [dict(zip(SEGMENTS, map(float, layer), strict=True)) for layer in shares],
    }


def generation_entry(result: GenerationAnalysis, page: str, *, page_nonfinite: int = 0) -> dict:
    """The report's entry for one prompt and its answer (`generation`: every step's scores, its
    alternatives, its logit lens and where its attention went)."""
    g = result.trace
    steps = []
    for t in range(g.steps):
        step = {
            "probability": float(g.probability[t]),
            "entropy": float(g.entropy[t]),
            "rank": int(g.rank[t]),
            "top": _top(g.top_ids[t], g.top_probabilities[t], g.top_tokens[t]),
            "attention_segments": _segments(result.segments[t]),
        }
        if g.lens_probability is not None:
            step["logit_lens"] = [
                {
                    "layer": layer,
                    "probability": float(g.lens_probability[layer, t]),
                    "rank": int(g.lens_rank[layer, t]),
                    "top": _top(
                        g.lens_top_ids[layer, t],
                        g.lens_top_probabilities[layer, t],
                        g.lens_top_tokens[layer][t],
                    ),
                }
                for layer in range(g.layers + 1)
            ]
        steps.append(step)
    entry = {
        "id": g.id,
        "page": page,
        "text": g.prompt,
        "label": g.label,
        "generation": {
            "input_text": g.text,
            "template": g.template,
            "prompt_tokens": list(g.prompt_tokens),
            "prompt_ids": g.prompt_ids.tolist(),
            "prompt_offsets": g.prompt_offsets.tolist(),
            "special": g.special.tolist(),
            "from_template": g.from_template.tolist(),
            "tokens": list(g.tokens),
            "ids": g.ids.tolist(),
            "text": g.answer,
            "forced": g.forced,
            "stop_reason": g.stop_reason,
            "log_probability": result.log_probability,
            "mean_probability": result.mean_probability,
            "min_probability": result.min_probability,
            "min_step": result.min_step,
            "steps": steps,
        },
    }
    derived = NonFinite()
    entry = clean(entry, derived)
    if derived.count + page_nonfinite:
        entry["nonfinite"] = {"derived_values": derived.count + page_nonfinite}
    return entry


def _model(card: ModelCard) -> dict:
    return {
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
    }


def _metrics(results: AnalysisResults) -> dict:
    m = results.metrics
    if m is None:
        return {}
    return {
        "accuracy": m.accuracy,
        "labelled": m.labelled,
        "confusion": m.confusion,
        "true_counts": m.true_counts,
        "predicted_counts": m.predicted_counts,
        "unknown_labels": m.unknown_labels,
        "examples": results.examples,
    }


def _comparison(c: Comparison) -> dict:
    return {
        "name": c.name,
        "model": {"architecture": c.architecture, "file": c.file, "labels": c.labels},
        **c.summary,
        "examples_detail": c.pairs,
    }


def _with_points(entries: list[dict], space: DecisionSpace) -> list[dict]:
    """The entries with each drawn example's point in the decision space and the slice's class."""
    rows = range(len(entries)) if space.rows is None else space.rows
    out = list(entries)
    for row, xyz, on_slice in zip(rows, space.coords, space.slice_predictions, strict=True):
        out[row] = {**out[row], "xyz": clean(xyz.tolist()), "slice_prediction": space.labels[int(on_slice)]}
    return out


def report_document(
    *,
    title: str,
    card: ModelCard,
    entries: list[dict],
    results: AnalysisResults,
    kind: str = "classification",
    skipped_rows: list[dict] | None = None,
) -> dict:
    """The whole report: the model, the metrics, the dataset-level analysis and every example;
    `kind` is "classification" (a prediction per text) or "generation" (an answer per prompt).
    `skipped_rows` are the data file's rows the build skipped as bad (file, line, reason): in
    the report, so a row left out is never left out silently."""
    report = {
        "schema": SCHEMA,
        "kind": kind,
        "title": title,
        "generator": f"attnreport {__version__}",
        "model": _model(card),
        "metrics": _metrics(results),
        "analysis": {
            "faithfulness": results.summaries.faithfulness,
            "agreement_with_occlusion": results.summaries.agreement_with_occlusion,
        },
        "nonfinite_examples": [e["id"] for e in entries if "nonfinite" in e],
        "skipped_rows": list(skipped_rows or []),
        "heads": [{**asdict(h.scores), "typical": h.typical_ids} for h in results.heads],
        "examples": entries,
    }
    if results.distance_profile is not None:
        report["analysis"]["attention_by_distance"] = results.distance_profile
    space = results.decision_space
    if space is not None:
        report["decision_space"] = space.summary()
        report["examples"] = _with_points(entries, space)
        report["decision_spaces"] = sorted(
            (
                {**s.summary(), "layer": s.layer_index(card.layers), "default": s is space}
                for s in (space, *results.layer_spaces)
            ),
            key=lambda entry: entry["layer"],
        )
    if results.comparison is not None:
        report["compare"] = _comparison(results.comparison)
    return clean(report)


def write_report(folder: Path, report: dict) -> Path:
    """Write `report` as the site's ``report.json`` (deterministic bytes) into a site being built
    (a fresh folder, swapped in whole when done, so no partial file is ever seen)."""
    path = Path(folder) / REPORT_FILE
    path.write_text(dumps(report) + "\n", encoding="utf-8", newline="\n")
    return path
