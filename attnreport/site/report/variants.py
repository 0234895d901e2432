"""report.json's `variants`: a generation report's prompts asked again in other words, each pair
side by side."""

from __future__ import annotations

from attnreport.analysis.variants import AnswerSide, VariantComparison


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
