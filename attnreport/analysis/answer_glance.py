"""An answer at a glance: a few sentences built from the numbers, for the top of its page.

Like the classifiers' verdict (`analysis.verdict`), every figure in a sentence is one the page
shows below it: for the step the reader should look at first (the first contrast a row asked
for, else the least confident token), what it wrote and what it nearly wrote, where it looked
under the page's default attention view (beyond the sink), and which of the prompt's units
counted most for it by the first attribution method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnreport.analysis.attention_views import VIEWS
from attnreport.analysis.generation import GenerationAnalysis

#: how many looked-at positions a sentence names
NAMED = 3


@dataclass(frozen=True)
class GlanceStep:
    """The step a glance is about and why it was chosen (``"asked"`` or ``"least_confident"``)."""

    step: int
    why: str
    foil: str | None = None


def focus_steps(result: GenerationAnalysis) -> list[GlanceStep]:
    """The asked-for contrasts' steps (in the row's order), else the least confident step."""
    ex = result.explanation
    asked = [] if ex is None else [GlanceStep(t, "asked", foil) for t, _, foil in ex.requested]
    if asked:
        return asked
    return [] if result.min_step is None else [GlanceStep(result.min_step, "least_confident")]


def open_step(result: GenerationAnalysis) -> int:
    """The step the page opens on: the first of `focus_steps` (0 for an empty answer)."""
    steps = focus_steps(result)
    return steps[0].step if steps else 0


def _quoted(text: str) -> str:
    return "«" + str(text).replace("\n", "⏎") + "»"


def _foil_probability(result: GenerationAnalysis, t: int, foil: str) -> float | None:
    g = result.trace
    for token, p in zip(g.top_tokens[t], g.top_probabilities[t], strict=True):
        if token == foil:
            return float(p)
    return None


def _runner_up(result: GenerationAnalysis, t: int) -> tuple[str, float] | None:
    g = result.trace
    for i, (token, p) in enumerate(zip(g.top_tokens[t], g.top_probabilities[t], strict=True)):
        if int(g.top_ids[t][i]) != int(g.ids[t]):
            return token, float(p)
    return None


def glance(result: GenerationAnalysis) -> list[str]:
    """The sentences (see the module's docstring), one paragraph per focus step."""
    g, ex = result.trace, result.explanation
    out = []
    for focus in focus_steps(result):
        t = focus.step
        chosen = f"Wrote {_quoted(g.tokens[t])} ({g.probability[t]:.0%})"
        if focus.why == "asked":
            p = _foil_probability(result, t, focus.foil)
            share = f"{p:.0%}" if p is not None else "not among its top tokens"
            rather = f" rather than {_quoted(focus.foil)} ({share})"
            lead = f"Token {t}, the contrast asked for: "
        else:
            runner = _runner_up(result, t)
            rather = "" if runner is None else f" rather than {_quoted(runner[0])} ({runner[1]:.0%})"
            lead = f"Token {t}, the least confident: "
        sentences = [lead + chosen + rather + "."]
        looked = result.looked_at[t][:NAMED] if result.looked_at else []
        if looked:
            names = ", ".join(
                _quoted(p["token"]) + (" (template)" if p["segment"] == "template" else "") for p in looked
            )
            sink = result.sinks.step_share(t) if result.sinks is not None else 0.0
            view = VIEWS[result.default_view]
            apart = ""
            if view.folds_sinks and sink:
                apart = f"; the attention sink, set apart, took {sink:.0%} of its raw attention"
            sentences.append(f"It looked most at {names} ({view.label}{apart}).")
        if ex is not None and ex.attributions and ex.units is not None and len(ex.units):
            method, a = next(iter(ex.attributions.items()))
            if focus.why == "asked":
                index = [s for s, _, _ in ex.requested].index(t)
                values = np.asarray(a.requested[index])
                what = f"{_quoted(g.tokens[t])} over {_quoted(focus.foil)}"
            else:
                values, what = np.asarray(a.values[t]), _quoted(g.tokens[t])
            units = ex.units.to_list(g.text)
            values = values[: len(units)]  # the prompt's own units (the segments follow)
            if len(values) and np.isfinite(values).any():
                top = int(np.nanargmax(np.abs(values)))
                v = float(values[top])
                unit = "nats" if ex.output == "log_probability" else "of probability"
                direction = "for" if v > 0 else "against"
                named = _quoted(units[top]["text"])
                sentences.append(
                    f"The {ex.units.kind} that counted most {direction} {what}: {named} "
                    f"({v:+.2f} {unit}, {method})."
                )
        out.append(" ".join(sentences))
    return out
