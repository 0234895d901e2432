"""Critical labels: the classes whose misses matter most (an urgent ticket, a safety report).

Accuracy averages a missed overdose with a misrouted parcel query. A reviewer names the
labels that must not be missed (`[analysis] critical_labels`) and gets, per label, the recall
(how many of its examples the model caught) and the misses themselves, the most confident
first: a miss on which the model gave the critical label almost no probability is the one a
threshold will not rescue, so it heads the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class CriticalMiss:
    """An example whose true label is critical and whose prediction is another label."""

    #: the example's row (its place in the report's examples)
    row: int
    label: str
    prediction: str
    #: the probability the model gave the prediction, and the critical label
    confidence: float
    label_probability: float


@dataclass
class CriticalLabel:
    """Recall of one critical label: its labelled examples, how many were caught, the misses."""

    label: str
    examples: int
    caught: int
    #: sorted by how confidently missed: lowest probability of the critical label first
    misses: list[CriticalMiss] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.caught / self.examples if self.examples else None


def critical_recall(
    critical: Sequence[str],
    judged: Sequence[tuple[int, str | None, str, dict[str, float]]],
) -> list[CriticalLabel]:
    """Per critical label, recall and misses over `judged`: (row, true label, predicted label,
    probability by label) for every example with a prediction."""
    out = []
    for name in critical:
        mine = [j for j in judged if j[1] == name]
        misses = [
            CriticalMiss(row, name, predicted, float(p[predicted]), float(p.get(name, 0.0)))
            for row, _, predicted, p in mine
            if predicted != name
        ]
        misses.sort(key=lambda m: (m.label_probability, -m.confidence, m.row))
        out.append(CriticalLabel(name, len(mine), len(mine) - len(misses), misses))
    return out
