"""A generation report's head atlas: `head_patterns`, every head's pattern scores on the answers,
the patterns it shows, where it shows each most, and the rules that decide it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from attnreport.analysis.answer_heads import (
    ANSWER_PATTERNS,
    SEED_NAMES,
    AnswerHead,
    AnswerHeadThresholds,
    pattern_counts,
)


def head_patterns_section(
    heads: Sequence[AnswerHead],
    thresholds: AnswerHeadThresholds,
    pages: Mapping[str, str],
    *,
    layers: int,
    prompts: int,
) -> dict:
    """report.json's `head_patterns`: the rules (with their thresholds), per pattern how many heads
    of each layer show it, and each head's scores, patterns and examples (each example with its
    page, opened at its step)."""
    counts = pattern_counts(heads, layers)
    return {
        "measured_on": f"the attention rows of the answer steps of {prompts} prompts",
        "prompts": prompts,
        "patterns": list(ANSWER_PATTERNS),
        "seed_names": dict(SEED_NAMES),
        "rules": thresholds.rules(),
        "thresholds": {p: getattr(thresholds, p) for p in ANSWER_PATTERNS},
        "window": thresholds.window,
        "counts": counts,
        "totals": {p: sum(c) for p, c in counts.items()},
        "heads": [
            {
                **h.to_dict(),
                "examples": {
                    p: {**e.to_dict(), "page": f"{pages[e.id]}#step={e.step}" if e.id in pages else None}
                    for p, e in h.examples.items()
                },
            }
            for h in heads
        ],
    }
