"""``report.json``, the machine-readable report: made here from the stages' typed results, and only here.

Over 400 lines because it is the one writer of the report: every entry's shape (examples,
generations, variants, probes) is made here, so the README's schema has one place to match.

Pages and templates read the report this module makes; no other module adds to it. Its shape is
documented in the README (schema 1); indices are 0-based and lists over tokens have one value
per token. An attribution over larger units (words, sentences, lines) says so: its ``unit``, its
``units`` as character spans, and one value per unit.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from attnreport import __version__
from attnreport.analysis.answer_attribution import SEGMENT_UNITS
from attnreport.analysis.data_groups import DataGroups, DataGroupSummary
from attnreport.analysis.decision import DecisionSpace
from attnreport.analysis.generation import SEGMENTS, GenerationAnalysis
from attnreport.analysis.probes import AnswerProbe, ProbeResult
from attnreport.analysis.results import AnalysisResults, Comparison, ExampleAnalysis
from attnreport.analysis.variants import AnswerSide, VariantComparison
from attnreport.analysis.verdict import verdict
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
        "group": trace.group,
        "rollout": example.rollout_row,
        "windows": [list(w) for w in trace.windows],
        # tokens the tokenizer could not read ([UNK]): positions, their characters in `offsets`
        "unknown_tokens": list(example.unknown),
        "prediction": None,
        "probabilities": {},
        "confidence": None,
        "correct": None,
        # the plain verdict the page opens with, every word chosen by a number (`analysis.verdict`)
        "summary": verdict(example).to_dict(),
    }
    if prediction is not None:
        entry["prediction"] = prediction.label
        entry["probabilities"] = dict(zip(prediction.labels, prediction.probabilities.tolist(), strict=True))
        entry["confidence"] = prediction.confidence
        entry["correct"] = None if trace.label is None else trace.label == prediction.label
    if explanation is not None:
        entry["attributions"] = explanation.attributions
        # the other explained classes, and the predicted class against the runner-up ("why not B?")
        entry["classes"] = explanation.classes
        entry["contrast"] = explanation.contrast
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


def _rows(values) -> list | None:
    return None if values is None else np.asarray(values, dtype=np.float64).tolist()


def answer_attributions(result: GenerationAnalysis) -> dict:
    """`attributions` (by method), `contrasts` and `attribution_faithfulness` of one answer: unit
    spans index the input text (`input_text`, the template included); values run per answer token,
    then over units."""
    ex, g = result.explanation, result.trace
    if ex is None:
        return {}
    units = ex.units
    declared = {
        "unit": units.kind if units is not None else "custom",
        "units": None
        if units is None
        else units.to_list(g.text)
        + [{"start": None, "stop": None, "text": SEGMENT_UNITS[s], "segment": s} for s in ex.segments],
        "output": ex.output,
        "baseline": ex.baseline,
        "evaluations": ex.evaluations,
    }
    attributions, contrasts = {}, []
    for name, a in ex.attributions.items():
        attributions[name] = {
            **declared,
            "values": _rows(a.values),
            "stderr": _rows(a.std_error),
            "answer": _rows(a.answer),
            "answer_stderr": _rows(a.answer_std_error),
            "exact": a.exact,
            "estimator": a.method,
            "efficiency_gap": a.efficiency_gap or None,
        }
        for t, foil in enumerate(ex.foils.tolist()):
            if foil >= 0:
                contrasts.append(
                    {
                        "step": t,
                        "target": g.tokens[t],
                        "foil": g.top_tokens[t][foil],
                        "foil_id": int(g.top_ids[t][foil]),
                        "method": name,
                        "source": "runner_up",
                        "value": "log_probability_difference",
                        "values": _rows(a.contrasts[t]),
                    }
                )
        for (t, foil_id, foil), values in zip(ex.requested, a.requested, strict=True):
            contrasts.append(
                {
                    "step": t,
                    "target": g.tokens[t],
                    "foil": foil,
                    "foil_id": foil_id,
                    "method": name,
                    "source": "asked",
                    "value": "log_probability_difference",
                    "values": _rows(values),
                }
            )
    return {
        "attributions": attributions,
        "contrasts": contrasts,
        "attribution_faithfulness": ex.faithfulness,
        "token_faithfulness": ex.token_faithfulness,
        "attribution_skipped": ex.skipped,
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
            **answer_attributions(result),
        },
    }
    derived = NonFinite()
    entry = clean(entry, derived)
    if derived.count + page_nonfinite:
        entry["nonfinite"] = {"derived_values": derived.count + page_nonfinite}
    return entry


def _model(card: ModelCard) -> dict:
    """report.json's `model`; with ``gguf`` (the file, its quantization, dequantized) for a model
    exported from a GGUF file, and ``checkpoint_decoding`` where the checkpoint's own decoding
    settings differ from the greedy decoding the answers were made with."""
    model = {
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
    if card.extra.get("gguf"):
        model["gguf"] = card.extra["gguf"]
    if card.generation is not None and card.generation.checkpoint_defaults:
        model["checkpoint_decoding"] = card.generation.checkpoint_defaults
    return model


def _data_groups(groups: DataGroups) -> dict:
    """report.json's `groups`: per data group the metrics, confidence, faithfulness and token
    groups, each with its interval where it has one."""

    def one(g: DataGroupSummary) -> dict:
        m = g.metrics
        return {
            "name": g.name,
            "examples": g.examples,
            "predicted": g.predicted,
            "labelled": 0 if m is None else m.labelled,
            "accuracy": None if m is None else m.accuracy,
            "accuracy_interval": None if g.accuracy_interval is None else list(g.accuracy_interval),
            "confusion": None if m is None else m.confusion,
            "predicted_counts": None if m is None else m.predicted_counts,
            "mean_confidence": g.mean_confidence,
            "confidence_interval": None if g.confidence_interval is None else list(g.confidence_interval),
            "faithfulness": g.faithfulness,
            "token_groups": g.token_groups,
        }

    return {"column": groups.column, "ungrouped": groups.ungrouped, "groups": [one(g) for g in groups.groups]}


def _critical(results: AnalysisResults, entries: list[dict]) -> dict:
    """Per critical label: recall, and the misses (most confident first), each with its page."""
    out = {}
    for c in results.critical:
        out[c.label] = {
            "examples": c.examples,
            "caught": c.caught,
            "recall": c.recall,
            "missed": [
                {
                    "row": m.row,
                    "id": entries[m.row]["id"],
                    "page": entries[m.row]["page"],
                    "prediction": m.prediction,
                    "confidence": m.confidence,
                    "label_probability": m.label_probability,
                }
                for m in c.misses
            ],
        }
    return out


def _metrics(results: AnalysisResults, entries: list[dict]) -> dict:
    m = results.metrics
    if m is None:
        return {}
    critical = {"critical": _critical(results, entries)} if results.critical else {}
    return {
        "accuracy": m.accuracy,
        "labelled": m.labelled,
        "confusion": m.confusion,
        "true_counts": m.true_counts,
        "predicted_counts": m.predicted_counts,
        "unknown_labels": m.unknown_labels,
        "examples": results.examples,
        **critical,
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
    variants: list[VariantComparison] | None = None,
    skipped_rows: list[dict] | None = None,
    probes: list[ProbeResult] | None = None,
    probe_pages: dict[tuple[str, str], str] | None = None,
    answer_probes: list[AnswerProbe] | None = None,
) -> dict:
    """The whole report: the model, the metrics, the dataset-level analysis and every example;
    `kind` is "classification" (a prediction per text) or "generation" (an answer per prompt,
    with `variants`: prompts asked again in other words, side by side). `skipped_rows` are the
    data file's rows the build skipped as bad (file, line, reason): in the report, so a row left
    out is never left out silently. `probes` are the counterfactual probes, their shown pairs'
    pages in `probe_pages` by (probe, id); `answer_probes` a generation report's."""
    report = {
        "schema": SCHEMA,
        "kind": kind,
        "title": title,
        "generator": f"attnreport {__version__}",
        "model": _model(card),
        "metrics": _metrics(results, entries),
        "analysis": {
            "faithfulness": results.summaries.faithfulness,
            "agreement_with_occlusion": results.summaries.agreement_with_occlusion,
        },
        "nonfinite_examples": [e["id"] for e in entries if "nonfinite" in e],
        "skipped_rows": list(skipped_rows or []),
        "heads": [{**asdict(h.scores), "typical": h.typical_ids} for h in results.heads],
        "examples": entries,
    }
    unknown = [e for e in entries if e.get("unknown_tokens")]
    if unknown:
        report["unknown_tokens"] = {
            "tokens": sum(len(e["unknown_tokens"]) for e in unknown),
            "examples": [
                {"id": e["id"], "page": e["page"], "tokens": len(e["unknown_tokens"])} for e in unknown
            ],
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
    if results.token_groups is not None:
        report["token_groups"] = results.token_groups
    if results.data_groups is not None:
        report["groups"] = _data_groups(results.data_groups)
    if variants:
        pages = {e["id"]: e["page"] for e in entries}
        report["variants"] = [variant_entry(v, pages) for v in variants]
    if probes is not None:
        pages = {e["id"]: e["page"] for e in entries}
        report["probes"] = [probe_entry(p, probe_pages or {}, pages) for p in probes]
    if answer_probes is not None:
        pages = {e["id"]: e["page"] for e in entries}
        report["probes"] = [answer_probe_entry(p, pages) for p in answer_probes]
    return clean(report)


def probe_entry(result: ProbeResult, pages: dict[tuple[str, str], str], examples: dict[str, str]) -> dict:
    """One probe over the dataset: how many texts it matched and flipped, the mean change of the
    originally predicted class's probability (with its 95% bootstrap interval over texts), and the
    pairs of the largest change, each with its side-by-side page."""
    mean = result.mean_change()
    labels = result.labels
    entry = {
        "name": result.name,
        "swap": result.swap,
        "replace": result.replace,
        "matched": result.matched,
        "scored": len(result.pairs),
        "unscored": result.unscored,
        "flipped": result.flipped,
        "flip_rate": result.flipped / len(result.pairs) if result.pairs else None,
        "mean_change": None if mean is None else mean[0],
        "mean_change_interval": None if mean is None else [mean[1], mean[2]],
        "flips": [{"from": a, "to": b, "texts": n} for a, b, n in result.flips()],
        "flipped_ids": [p.id for p in result.pairs if p.flipped],
        "examples": [
            {
                "id": p.id,
                "page": pages.get((result.name, p.id)),
                "example_page": examples.get(p.id),
                "original": p.text,
                "counterfactual": p.counterfactual,
                "replacements": p.replacements,
                "spans": {"original": p.spans_before, "counterfactual": p.spans_after},
                "label": p.label,
                "prediction_before": labels[p.predicted],
                "prediction_after": labels[p.predicted_after],
                "flipped": p.flipped,
                "probability_before": float(p.before[p.predicted]),
                "probability_after": float(p.after[p.predicted]),
                "change": p.change,
                "probabilities_before": dict(zip(labels, p.before.tolist(), strict=True)),
                "probabilities_after": dict(zip(labels, p.after.tolist(), strict=True)),
            }
            for p in result.shown()
        ],
    }
    if not result.matched:
        entry["note"] = "matched no text"
    return entry


def answer_probe_entry(probe: AnswerProbe, pages: dict[str, str]) -> dict:
    """One probe over a generation report's prompts: how many it matched, how many answers changed,
    the mean change of the original answer's log-probability under the rewritten prompt (with its
    95% bootstrap interval), and per prompt both answers and the step where they part (its pair is
    also in `variants`, under the same id)."""
    mean = probe.mean_change()
    entry = {
        "name": probe.name,
        "swap": probe.swap,
        "replace": probe.replace,
        "matched": probe.matched,
        "changed": probe.changed,
        "mean_log_probability_change": None if mean is None else mean[0],
        "mean_log_probability_change_interval": None if mean is None else [mean[1], mean[2]],
        "examples": [
            {
                "id": v.id,
                "of": v.of,
                "page": pages.get(v.variant.id),
                "example_page": pages.get(v.of),
                "original": v.base.prompt,
                "counterfactual": v.variant.prompt,
                "answer_before": v.base.answer,
                "answer_after": v.variant.answer,
                "diverge_step": v.diverge_step,
                "same_answer": v.diverge_step is None,
                "log_probability_change": None
                if v.base_answer_under_variant is None
                else v.base_answer_under_variant - v.base.log_probability,
            }
            for v in probe.pairs
        ],
    }
    if not probe.matched:
        entry["note"] = "matched no text"
    return entry


def _side(side: AnswerSide, page: str | None) -> dict:
    return {
        "id": side.id,
        "page": page,
        "prompt": side.prompt,
        "answer": side.answer,
        "tokens": side.tokens,
        "log_probability": side.log_probability,
        "units": side.units,
    }


def variant_entry(v: VariantComparison, pages: dict[str, str]) -> dict:
    """One prompt and its variant: both answers, where they part, the change in the base answer's
    log-probability under the variant, and what each answer read of the units both prompts share."""
    shared = []
    for i, j in v.shared:
        unit = {
            "text": v.base.units[i],
            "base_unit": i,
            "variant_unit": j,
            "attention": [float(v.base.attention[i]), float(v.variant.attention[j])],
        }
        if v.base.attribution is not None and v.variant.attribution is not None:
            unit["attribution"] = [float(v.base.attribution[i]), float(v.variant.attribution[j])]
        shared.append(unit)
    under = v.base_answer_under_variant
    return {
        "id": v.id,
        "of": v.of,
        "name": v.name,
        "base": _side(v.base, pages.get(v.base.id)),
        "variant": _side(v.variant, pages.get(v.variant.id)),
        "diverge_step": v.diverge_step,
        "same_answer": v.diverge_step is None,
        "base_answer_under_variant": under,
        "log_probability_change": None if under is None else under - v.base.log_probability,
        "attribution_method": v.base.method,
        "shared_units": shared,
    }


def write_report(folder: Path, report: dict) -> Path:
    """Write `report` as the site's ``report.json`` (deterministic bytes) into a site being built
    (a fresh folder, swapped in whole when done, so no partial file is ever seen)."""
    path = Path(folder) / REPORT_FILE
    path.write_text(dumps(report) + "\n", encoding="utf-8", newline="\n")
    return path
