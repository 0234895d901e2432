"""report.json's `probes`: each counterfactual probe over a classification report's texts
(`probe_entry`) or a generation report's prompts (`answer_probe_entry`)."""

from __future__ import annotations

from attnreport.analysis.probes import AnswerProbe, ProbeResult


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
