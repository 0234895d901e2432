"""A prompt and its variant, answer against answer: where they part, and what each read.

Prompt engineering asks whether moving an instruction or adding a word changed the answer, and
why. Per pair: both answers, the first answer token where they differ, each answer's
log-probability and the original answer's under the variant (teacher-forced: how much less likely
the variant makes the first answer), and, for the units both prompts share (matched in order by
their text), the attention and the attribution each answer puts on them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np

from attnreport.analysis.generation import GenerationAnalysis, prompt_units


@dataclass
class AnswerSide:
    """What a comparison needs of one answered prompt (kept while the pages stream by)."""

    id: str
    prompt: str
    tokens: list[str]
    ids: list[int]
    answer: str
    log_probability: float
    #: the prompt's units (the attributions' own when there are any)
    units: list[str]
    #: ``[p]``: the answer's mean attention (last layer, mean of heads) on each unit's tokens
    attention: np.ndarray
    #: ``[p]``: the whole answer's attribution to each unit, by the first method; None without
    attribution: np.ndarray | None = None
    method: str | None = None


def answer_side(result: GenerationAnalysis, *, unit: str = "word", max_tokens: int = 64) -> AnswerSide:
    g = result.trace
    ex = result.explanation
    units = (
        ex.units if ex is not None and ex.units is not None else prompt_units(g, unit, max_tokens=max_tokens)
    )
    rows = g.attentions[-1].astype(np.float64).mean(axis=0)  # [T, K]
    attention = (
        np.array([rows[:, m].sum(axis=1).mean() for m in units.members]) if g.steps else np.zeros(len(units))
    )
    side = AnswerSide(
        id=g.id,
        prompt=g.prompt,
        tokens=list(g.tokens),
        ids=[int(i) for i in g.ids],
        answer=g.answer,
        log_probability=result.log_probability,
        units=[u["text"] for u in units.to_list(g.text)],
        attention=attention,
    )
    if ex is not None and ex.attributions:
        method, a = next(iter(ex.attributions.items()))
        side.attribution, side.method = np.asarray(a.answer), method
    return side


def diverge_step(a: list[int], b: list[int]) -> int | None:
    """The first answer position whose tokens differ (the shorter answer's length when one is the
    other's beginning); None for the same answer."""
    for t, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return t
    return None if len(a) == len(b) else min(len(a), len(b))


def shared_units(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Index pairs of the units both prompts have, matched in order (difflib's longest matching
    blocks), so a word moved to the front is matched once and an added word not at all."""
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return [(block.a + k, block.b + k) for block in matcher.get_matching_blocks() for k in range(block.size)]


@dataclass
class VariantComparison:
    id: str
    of: str
    name: str
    base: AnswerSide
    variant: AnswerSide
    diverge_step: int | None
    #: log-probability of the base prompt's answer when the variant prompt is asked (teacher-forced)
    base_answer_under_variant: float | None
    #: (base unit, variant unit) index pairs of the units both prompts share
    shared: list[tuple[int, int]] = field(default_factory=list)


def compare_variant(
    base: AnswerSide, variant: AnswerSide, *, id: str, name: str, base_answer_under_variant: float | None
) -> VariantComparison:
    return VariantComparison(
        id=id,
        of=base.id,
        name=name,
        base=base,
        variant=variant,
        diverge_step=diverge_step(base.ids, variant.ids),
        base_answer_under_variant=base_answer_under_variant,
        shared=shared_units(base.units, variant.units),
    )
