"""A plain verdict per example: one or two sentences a reviewer reads before any figure.

Every word of it is chosen by a number: the prediction and the runner-up by their
probabilities, the words named by their attributions (only those whose effect is above the
negligible threshold and whose sign is established), whether occlusion agrees by the rank
correlation, and how far the attributions can be trusted by their comprehensiveness against
random rankings (reliable / weak / no better than chance, `analysis.trust`). Nothing is free
text, so a test can rebuild each sentence from report.json, and beside each plain phrase the
report keeps the technical statement it stands for (`Verdict.terms`), which the page shows on
demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnreport.analysis.attribution_methods import OUTPUT_RANGE
from attnreport.analysis.results import ExampleAnalysis
from attnreport.analysis.trust import TrustLevel, trust_of_views

#: the words named for and against the prediction, at most
FOR_WORDS = 3
AGAINST_WORDS = 2
#: a named unit is cut to this many characters (sentences can be long)
NAME_CHARS = 40
#: Spearman correlation with occlusion from which occlusion "agrees", and up to which it "disagrees"
AGREES = 0.5
DISAGREES = 0.0
#: the attribution the verdict reads, first found
METHODS = ("shapley", "occlusion")
#: how the trust clause ends, by the verdict on the attributions (`analysis.trust`)
TRUST_WORDS = {
    TrustLevel.RELIABLE: ", reliable",
    TrustLevel.WEAK: ", weak: read them with care",
    TrustLevel.CHANCE: ", no better than chance: read them with care",
}
#: what a unit is called in a sentence
UNIT_WORDS = {"token": "tokens", "word": "words", "sentence": "sentences", "line": "lines"}


@dataclass
class Verdict:
    text: str
    #: plain phrase -> the technical statement it stands for, in the order they appear
    terms: list[dict[str, str]] = field(default_factory=list)
    #: "why not B?": {"label": B, "method", "text"} from the contrast's attributions; None without
    why_not: dict | None = None

    def to_dict(self) -> dict:
        return {"text": self.text, "terms": self.terms, "why_not": self.why_not}


def percent(p: float) -> str:
    return f"{100 * p:.0f}%"


def quoted(name: str) -> str:
    name = " ".join(name.split())
    if len(name) > NAME_CHARS:
        name = name[: NAME_CHARS - 1].rstrip() + "…"
    return f"'{name}'"


def unit_names(example: ExampleAnalysis, attribution: dict) -> list[str]:
    """What each scored unit reads as: a token's characters in the text, or a unit's text."""
    if attribution.get("unit", "token") != "token":
        return [u["text"] for u in attribution["units"]]
    trace = example.trace
    return [trace.text[a:b] for (a, b), s in zip(trace.offsets, trace.special, strict=True) if not s]


def unit_values(example: ExampleAnalysis, attribution: dict, key: str = "values") -> np.ndarray | None:
    """The attribution's values per scored unit (token attributions drop the special tokens)."""
    values = attribution.get(key)
    if values is None:
        return None
    values = np.array([np.nan if v is None else v for v in values], dtype=float)
    if attribution.get("unit", "token") == "token":
        values = values[~example.trace.special]
    return values


def pushes(example: ExampleAnalysis, attribution: dict) -> tuple[list[int], list[int]]:
    """The units that pushed the output up (strongest first) and down, above the negligible
    threshold and with an established sign (a 95% interval that excludes 0, where sampled)."""
    values = unit_values(example, attribution)
    errors = unit_values(example, attribution, "std_error")
    negligible = float(attribution.get("negligible", 0.0))
    strong = np.abs(values) >= negligible
    if negligible == 0.0:
        strong &= values != 0
    if errors is not None:
        strong &= ~(np.abs(values) < 1.96 * np.nan_to_num(errors, nan=np.inf))
    order = np.argsort(-values, kind="stable")
    up = [int(i) for i in order if strong[i] and values[i] > 0]
    down = [int(i) for i in order[::-1] if strong[i] and values[i] < 0]
    return up, down


def _because(names: list[str], up: list[int], down: list[int], unit: str, negligible: float) -> str:
    up, down = up[:FOR_WORDS], down[:AGAINST_WORDS]
    pro = ", ".join(quoted(names[i]) for i in up)
    con = ", ".join(quoted(names[i]) for i in down)
    if up and down:
        return f"mainly because of {pro} (for) and {con} (against)"
    if up:
        return f"mainly because of {pro}"
    if down:
        return f"despite {con} (against)"
    return f"no single {unit} moved it by {negligible:g} or more"


def _agreement(rho: float | None) -> str | None:
    if rho is None:
        return None
    if rho >= AGREES:
        return "occlusion agrees"
    if rho > DISAGREES:
        return "occlusion partly agrees"
    return "occlusion disagrees"


def verdict(example: ExampleAnalysis) -> Verdict:
    """The example's verdict from its prediction, attributions and faithfulness."""
    prediction, explanation = example.prediction, example.explanation
    if prediction is None:
        return Verdict("No prediction: the model's outputs for this text were not finite (see below).")
    probabilities = prediction.probabilities
    order = np.argsort(-probabilities, kind="stable")
    labels = prediction.labels
    first = f"Predicted {labels[order[0]]} ({percent(probabilities[order[0]])})"
    terms = [
        {
            "plain": first.removeprefix("Predicted "),
            "technical": f"softmax probability of the class {labels[order[0]]!r}: "
            f"{probabilities[order[0]]:.4f}",
        }
    ]
    if len(order) > 1:
        first += f", not {labels[order[1]]} ({percent(probabilities[order[1]])})"
    clauses = [first]
    attributions = explanation.attributions if explanation is not None else {}
    method = next((m for m in METHODS if m in attributions), None)
    if method is not None:
        a = attributions[method]
        unit = UNIT_WORDS.get(a.get("unit", "token"), "units")
        names = unit_names(example, a)
        up, down = pushes(example, a)
        negligible = float(a.get("negligible", 0.0))
        clauses.append(_because(names, up, down, unit.removesuffix("s"), negligible))
        terms.append(
            {
                "plain": "mainly because of … (for) and … (against)",
                "technical": f"the {unit} with the largest positive and negative {method} values for the "
                f"{a['output']} of {a['target']!r} ({a['baseline']} standing in for an absent one); "
                f"effects below {negligible:g} and estimates within 1.96 standard errors of 0 "
                f"(sign not established) are not named",
            }
        )
        rho = explanation.agreement.get(method) if method != "occlusion" else None
        agree = _agreement(rho)
        if agree is not None:
            clauses.append(agree)
            terms.append(
                {
                    "plain": agree,
                    "technical": f"Spearman rank correlation {rho:.2f} between the {method} values and "
                    f"occlusion (each {unit.removesuffix('s')} left out alone); agrees from {AGREES}, "
                    f"disagrees at {DISAGREES} or below",
                }
            )
        trust = _trust(explanation.faithfulness, method, a, unit, probabilities[order[0]])
        if trust is not None:
            clauses.append(trust[0])
            terms.append(trust[1])
    elif explanation is not None and explanation.skipped.get("attributions"):
        clauses.append(f"no attributions ({explanation.skipped['attributions']})")
    text = "; ".join(clauses) + "."
    truth = example.trace.label
    if truth is not None and truth in labels and truth != labels[order[0]]:
        text += f" Wrong: the text is labelled {truth}."
    return Verdict(text, terms, why_not(example))


def why_not(example: ExampleAnalysis) -> dict | None:
    """Why the runner-up lost: the units that made the prediction likelier than it, and those that
    pulled towards it, from the attributions of the contrast f(A) - f(B)."""
    explanation, prediction = example.explanation, example.prediction
    if explanation is None or prediction is None or not explanation.contrast:
        return None
    c = explanation.contrast
    method = next((m for m in METHODS if m in c), None)
    if method is None:
        return None
    a = c[method]
    p = dict(zip(prediction.labels, prediction.probabilities.tolist(), strict=True))
    names = unit_names(example, a)
    up, down = pushes(example, a)
    unit = a.get("unit", "token")
    parts = []
    if up:
        said = ", ".join(quoted(names[i]) for i in up[:FOR_WORDS])
        parts.append(f"{said} made {c['a']} likelier than {c['b']}")
    if down:
        said = ", ".join(quoted(names[i]) for i in down[:AGAINST_WORDS])
        parts.append(f"{said} pulled towards {c['b']}")
    if not parts:
        parts.append(f"no single {unit} separates them by {float(a.get('negligible', 0.0)):g} or more")
    head = f"{c['a']} ({percent(p.get(c['a'], 0.0))}) rather than {c['b']} ({percent(p.get(c['b'], 0.0))})"
    return {"label": c["b"], "method": method, "text": f"{head}: " + "; ".join(parts) + "."}


def _trust(faith: dict, method: str, a: dict, unit: str, probability: float):
    """How much of the prediction the top-ranked units carry, against random ones."""
    if method not in faith or "random" not in faith:
        return None
    comp, rand = faith[method]["comprehensiveness"], faith["random"]["comprehensiveness"]
    if comp is None or rand is None:
        return None
    negligible = float(a.get("negligible", 0.0))
    technical = (
        f"comprehensiveness (ERASER, DeYoung et al. 2020): the mean drop of the {a['output']} of "
        f"{a['target']!r} when the top 1, 5, 10, 20 and 50% of {unit} by {method} are replaced by "
        f"{a['baseline']}: {comp:+.4f}; random rankings: {rand:+.4f}"
    )
    shares = a["output"] == "probability" and probability > 0
    # below the negligible threshold, or (as shares) below half a percent: nothing to report
    floor = max(negligible, 0.005 * probability) if shares else negligible
    if max(abs(comp), abs(rand)) < floor:
        plain = f"taking the top {unit} away has no measurable effect"
    elif shares:
        random = f"(random {unit}: {percent(rand / probability)})"
        if comp >= 0:
            removed = percent(comp / probability)
            plain = f"these attributions remove {removed} of the prediction when taken away {random}"
        else:
            plain = (
                f"taking the top {unit} away raises the prediction by {percent(-comp / probability)} {random}"
            )
        technical += f", as shares of the probability {probability:.4f}"
    else:
        plain = (
            f"taking the top {unit} away lowers the {a['output']} by {comp:.2f} (random {unit}: {rand:.2f})"
        )
    judged = trust_of_views(
        {method: faith[method], "random": faith["random"]},
        output=a["output"],
        output_range=OUTPUT_RANGE.get(a["output"], 1.0),
        negligible=negligible,
    ).get(method)
    if judged is not None:  # None: a figure that is not finite
        plain += TRUST_WORDS[judged.level]
        technical += f"; {judged.level}, by the rule: {judged.to_dict()['rule']}"
    return plain, {"plain": plain, "technical": technical}
