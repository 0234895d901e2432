"""A classification report's entry for one example: its text, tokens, prediction, attributions,
rollout and verdict; and the report's summary of the tokens its tokenizer could not read."""

from __future__ import annotations

from attnreport.analysis.attribution_methods import OUTPUT_RANGE
from attnreport.analysis.results import ExampleAnalysis
from attnreport.analysis.trust import trust_of_views
from attnreport.analysis.verdict import METHODS, verdict
from attnreport.core.jsonsafe import NonFinite, clean


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
        # per view, reliable / weak / no better than chance against the random rankings
        entry["trust"] = views_trust(explanation.faithfulness, explanation.attributions)
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


def views_trust(faith: dict, attributions: dict) -> dict:
    """Each view's trust verdict (`analysis.trust`) with its sentence, in the units of the explained
    output; the verdict sentence's method first. Empty without attributions to read the output from."""
    if not faith or not attributions:
        return {}
    a = next((attributions[m] for m in METHODS if m in attributions), next(iter(attributions.values())))
    unit = a.get("unit", "token") + "s"
    judged = trust_of_views(
        faith,
        output=a["output"],
        output_range=OUTPUT_RANGE.get(a["output"], 1.0),
        negligible=float(a.get("negligible", 0.0)),
    )
    first = [m for m in METHODS if m in judged]
    order = first + sorted(m for m in judged if m not in first)
    out = {}
    for m in order:
        name = m.replace("_", " ")
        if m == order[0] and m in attributions:
            subject = "These attributions"
        else:
            subject = f"The {name} attributions" if m in attributions else f"The {name} ranking"
        out[m] = judged[m].to_dict() | {"sentence": judged[m].sentence(subject=subject, unit=unit)}
    return out


def unknown_tokens_section(entries: list[dict]) -> dict:
    """report.json's `unknown_tokens` (how many, and in which examples), where any example has one;
    empty otherwise."""
    unknown = [e for e in entries if e.get("unknown_tokens")]
    if not unknown:
        return {}
    return {
        "unknown_tokens": {
            "tokens": sum(len(e["unknown_tokens"]) for e in unknown),
            "examples": [
                {"id": e["id"], "page": e["page"], "tokens": len(e["unknown_tokens"])} for e in unknown
            ],
        }
    }
