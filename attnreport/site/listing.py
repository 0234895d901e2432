"""The index's list of examples as compact columns, for a page that may list 100,000 of them.

One HTML row per example makes an index of 100k examples tens of MB of markup that the
browser lays out at once. Instead the index carries the list as one JSON block of columns
(text cut to `TEXT_CHARS`), and its script filters, sorts and shows one page of rows at a
time; the first page is also in the HTML, so the list reads without scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: characters of each text kept for the list (the example page has the whole text)
TEXT_CHARS = 140

#: rows shown at once on the index
PAGE_ROWS = 100


def cut(text: str, limit: int = TEXT_CHARS) -> str:
    """`text` on one line, at most `limit` characters, "…" marking a cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


#: characters of each answer kept for a generation report's list
ANSWER_CHARS = 80


def example_columns(examples: Sequence[dict]) -> dict[str, list]:
    """The report's example records as columns: id, text (cut), label, prediction, correct
    (1, 0 or None), confidence and page, each a list in report order, and the data group when
    the report has groups (`[data] group_column`)."""
    columns = {
        "id": [e["id"] for e in examples],
        "text": [cut(e["text"]) for e in examples],
        "label": [e.get("label") for e in examples],
        "prediction": [e.get("prediction") for e in examples],
        "correct": [None if e.get("correct") is None else int(bool(e["correct"])) for e in examples],
        "confidence": [e.get("confidence") for e in examples],
        "page": [e["page"] for e in examples],
    }
    if any(e.get("group") is not None for e in examples):
        columns["group"] = [e.get("group") for e in examples]
    return columns


def answer_columns(entries: Sequence[dict]) -> dict[str, list]:
    """A generation report's entries as `example_columns` lays them out, the prediction being the
    start of the answer and the confidence its mean step probability, plus the least step
    probability (`min_probability`)."""
    columns = example_columns(entries)
    generations = [e["generation"] for e in entries]
    columns["prediction"] = [cut(g["text"], ANSWER_CHARS) for g in generations]
    columns["confidence"] = [g["mean_probability"] for g in generations]
    columns["min_probability"] = [g["min_probability"] for g in generations]
    return columns


@dataclass(frozen=True)
class Listing:
    """How the index lists a report kind's entries: the columns its script reads, and the partial
    template that lays out the first page of them (a kind picks one; the index asks no kind)."""

    template: str
    columns: Callable[[Sequence[dict]], dict[str, list]]


#: a classification report's examples: text, label, prediction, confidence, outcome
EXAMPLES = Listing("listing_examples.html.j2", example_columns)
#: a generation report's prompts: prompt, label, answer, mean and least step probability
ANSWERS = Listing("listing_answers.html.j2", answer_columns)


def compare_order(pairs: Sequence[dict]) -> list[dict]:
    """The compare page's rows: flipped predictions first, then by how far the second run moved
    the first one's probability (largest shift first), row order breaking ties."""

    def key(item):
        row, p = item
        shift = p.get("probability_shift")
        return (p.get("agree") is not False, -abs(shift) if shift is not None else 0.0, row)

    return [p for _, p in sorted(enumerate(pairs), key=key)]
