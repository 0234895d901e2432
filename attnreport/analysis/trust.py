"""Whether an explanation can be trusted: reliable, weak or no better than chance, by a stated rule.

The figures are ERASER's (`analysis.faithfulness`): comprehensiveness, how much the explained
output drops when an explanation's top units are taken away, and sufficiency, how much it drops
when only they are kept, each set against random rankings of the same units. The rule reads the
**margin**, the explanation's comprehensiveness minus the random rankings', and its **noise**,
1.96 standard errors of that margin (on one text: of the random rankings' mean; over a dataset:
of the mean of the per-text margins):

- **reliable**: the margin is at least `RELIABLE_MARGIN` of the output's range (10 points of
  probability) *after* subtracting the noise, and the top units kept alone hold at least as
  much of the output as as many random units kept alone (sufficiency no higher than random's);
- **no better than chance**: the margin is within the noise, or smaller than the negligible
  effect (`[analysis] negligible`, below which the pages draw an effect grey), or negative;
- **weak**: everything in between.

Why 10 points. The margin is an average over the top 1, 5, 10, 20 and 50% of the units, so 10
points means the explanation's choice carries, over those sizes, a tenth of the probability more
than chance does; it is ten times the default negligible effect (0.01), so a reliable margin is
one a reader would see on the page, not one at the edge of the grey. On the demo (MiniLM on 63
support tickets) the Shapley margins run from 0.02 to 0.77: the 11 below 0.10 are the pages
whose sentence reads "these attributions remove 3-9% of the prediction (random tokens: 0-1%)",
the case a reviewer called explaining almost nothing; 51 of the others, removing 12-97%, are
reliable, and one (79% against random tokens' 62%) is weak for its noise. 1.96 standard errors is the normal
95% bound, the convention of every other interval in the report; with the default 8 random
rankings Student's t would ask 2.36, so on one text the bound is a little lenient.

`trust` is pure: numbers in, a `Trust` out, and `Trust.sentence` says it in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

#: the margin a reliable explanation clears beyond the noise, as a fraction of the output's range
#: (`attribution_methods.OUTPUT_RANGE`: 1 for a probability, so 10 points)
RELIABLE_MARGIN = 0.10
#: standard errors of noise: the normal 95% bound
NOISE_Z = 1.96


class TrustLevel(StrEnum):
    RELIABLE = "reliable"
    WEAK = "weak"
    CHANCE = "no better than chance"


@dataclass(frozen=True)
class Trust:
    level: TrustLevel
    #: comprehensiveness minus the random rankings' (in the output's units; higher is better)
    margin: float
    #: NOISE_Z standard errors of the margin; None where the spread was not measured (then 0)
    noise: float | None
    #: random sufficiency minus the explanation's (>= 0: the top units alone keep at least as much)
    sufficiency_margin: float | None
    #: the margin a reliable explanation clears beyond the noise, in the output's units
    threshold: float
    #: the negligible effect, in the output's units
    negligible: float
    #: the explained output ("probability", "logit", "log_probability")
    output: str

    def to_dict(self) -> dict:
        return {
            "level": str(self.level),
            "margin": self.margin,
            "noise": self.noise,
            "sufficiency_margin": self.sufficiency_margin,
            "threshold": self.threshold,
            "negligible": self.negligible,
            "output": self.output,
            "rule": rule(self.threshold, self.negligible, self.output),
        }

    def sentence(self, *, subject: str = "These attributions", unit: str = "tokens") -> str:
        """The verdict in words, plain first: "These attributions are weak: …" (a subject not
        ending in "s" takes "is")."""
        are, their = ("are", "their") if subject.endswith("s") else ("is", "its")
        what = "the prediction" if self.output == "probability" else f"the {self.output.replace('_', ' ')}"
        margin = _amount(abs(self.margin), self.output)
        more = "more" if self.margin >= 0 else "less"
        compared = (
            f"taking {their} top {unit} away lowers {what} by {margin} {more} than taking as many "
            f"random {unit} away"
        )
        if margin.startswith("less than"):  # too small to print: said in words
            compared = (
                f"taking {their} top {unit} away changes {what} about as much as taking as many "
                f"random {unit} away"
            )
        noise = f" of ±{_amount(self.noise, self.output)}" if self.noise else ""
        if self.level is TrustLevel.RELIABLE:
            return f"{subject} {are} reliable: {compared}, beyond the noise{noise}."
        if self.level is TrustLevel.CHANCE:
            if margin.startswith("less than"):
                return f"{subject} {are} no better than chance: {compared}."
            return f"{subject} {are} no better than chance: {compared}, {_why_chance(self, noise)}."
        if self.sufficiency_margin is not None and self.sufficiency_margin < 0 and self._clears():
            return (
                f"{subject} {are} weak: {compared}, but kept alone {their} top {unit} hold less of {what} "
                f"than as many random {unit}."
            )
        return (
            f"{subject} {are} weak: {compared}; reliable ones clear "
            f"{_amount(self.threshold, self.output)} beyond the noise{noise}."
        )

    def _clears(self) -> bool:
        return self.margin - (self.noise or 0.0) >= self.threshold


def _why_chance(t: Trust, noise: str) -> str:
    if t.margin <= 0:
        return "no better than random ones"
    if t.noise and t.margin <= t.noise:
        return f"within the noise{noise}"
    return "too small a difference to matter"


def _amount(x: float | None, output: str) -> str:
    if x is None:
        return "?"
    if output == "probability":
        points = round(100 * x)
        if points >= 1:
            return "1 point" if points == 1 else f"{points} points"
        return f"{100 * x:.1f} points" if 100 * x >= 0.05 else "less than 0.1 points"
    return f"{x:.2f}" if x >= 0.005 else "less than 0.01"


def rule(threshold: float, negligible: float, output: str = "probability") -> str:
    """The rule as the pages state it, with its thresholds in the output's units."""
    return (
        f"reliable: taking the top-ranked units away lowers the {output.replace('_', ' ')} by at least "
        f"{_amount(threshold, output)} more than taking as many random units away, after subtracting "
        f"{NOISE_Z} standard errors of noise, and keeping only them holds at least as much as keeping "
        f"as many random ones (comprehensiveness and sufficiency, ERASER, DeYoung et al. 2020); "
        f"no better than chance: the difference is within {NOISE_Z} standard errors, below the "
        f"negligible effect {negligible:g}, or negative; weak: in between"
    )


def trust(
    comprehensiveness: float,
    random_comprehensiveness: float,
    *,
    sufficiency: float | None = None,
    random_sufficiency: float | None = None,
    std_error: float | None = None,
    output: str = "probability",
    output_range: float = 1.0,
    negligible: float = 0.0,
) -> Trust:
    """The verdict on an explanation from its comprehensiveness (and sufficiency) against random
    rankings', with `std_error` the standard error of the margin where measured (by the rule in
    this module's docstring; thresholds in the output's units through `output_range`)."""
    for name, x in (
        ("comprehensiveness", comprehensiveness),
        ("random comprehensiveness", random_comprehensiveness),
    ):
        if not math.isfinite(x):
            raise ValueError(f"trust needs a finite {name}, got {x!r}")
    margin = float(comprehensiveness - random_comprehensiveness)
    noise = None if std_error is None or not math.isfinite(std_error) else NOISE_Z * float(std_error)
    sufficiency_margin = None
    if sufficiency is not None and random_sufficiency is not None:
        sufficiency_margin = float(random_sufficiency - sufficiency)
    threshold = RELIABLE_MARGIN * output_range
    if margin <= max(noise or 0.0, negligible):
        level = TrustLevel.CHANCE
    elif margin - (noise or 0.0) >= threshold and (sufficiency_margin is None or sufficiency_margin >= 0):
        level = TrustLevel.RELIABLE
    else:
        level = TrustLevel.WEAK
    return Trust(level, margin, noise, sufficiency_margin, threshold, float(negligible), output)


def _number(x) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def trust_of_views(
    faith: dict[str, dict], *, output: str, output_range: float, negligible: float
) -> dict[str, Trust]:
    """Each view's verdict on one text (`Explanation.faithfulness`, by view), the noise the
    standard error of the random rankings' mean; empty without finite random rankings."""
    rand = faith.get("random") or {}
    base = _number(rand.get("comprehensiveness"))
    if base is None:
        return {}
    out = {}
    for name, f in faith.items():
        comp = _number(f.get("comprehensiveness"))
        if name == "random" or comp is None:
            continue
        out[name] = trust(
            comp,
            base,
            sufficiency=_number(f.get("sufficiency")),
            random_sufficiency=_number(rand.get("sufficiency")),
            std_error=_number(rand.get("comprehensiveness_std_error")),
            output=output,
            output_range=output_range,
            negligible=negligible,
        )
    return out


def trust_over_texts(
    comprehensiveness: list[float],
    random_comprehensiveness: list[float],
    sufficiency: list[float],
    random_sufficiency: list[float],
    *,
    output: str,
    output_range: float,
    negligible: float,
) -> Trust:
    """A view's verdict over many texts, from each text's figures and its random rankings' (paired,
    in the same order): the margin is the mean of the per-text margins, the noise their standard
    error (none below two texts)."""
    margins = [c - r for c, r in zip(comprehensiveness, random_comprehensiveness, strict=True)]
    if not margins:
        raise ValueError("trust over texts needs at least one text")
    n = len(margins)
    mean = sum(margins) / n
    std_error = None
    if n > 1:
        std_error = math.sqrt(sum((m - mean) ** 2 for m in margins) / (n - 1) / n)
    return trust(
        sum(comprehensiveness) / n,
        sum(random_comprehensiveness) / n,
        sufficiency=sum(sufficiency) / n,
        random_sufficiency=sum(random_sufficiency) / n,
        std_error=std_error,
        output=output,
        output_range=output_range,
        negligible=negligible,
    )
