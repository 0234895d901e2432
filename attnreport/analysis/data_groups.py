"""Results by data group (`[data] group_column`): the same dataset facts, one group at a time.

A claim such as "symptom words get more attribution in medical texts" compares groups of the
data. Each group's numbers are the dataset's own, computed by the same code over the group's
examples only (the tally keeps one sub-tally per group), so a group's accuracy can never drift
from the whole report's. Each comes with a 95% interval, so a reader sees whether two groups
really differ: Wilson's interval for accuracy (scipy's binomial test), a bootstrap over examples
for mean confidence (as the token groups do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from attnreport.analysis.predictions import Metrics
from attnreport.analysis.token_groups import bootstrap_mean


@dataclass
class DataGroupSummary:
    """One data group's results."""

    name: str
    examples: int
    #: examples with a prediction (finite outputs)
    predicted: int
    metrics: Metrics | None
    #: 95% Wilson interval of the accuracy; None without labelled examples
    accuracy_interval: tuple[float, float] | None
    #: mean probability of the predicted class, with its 95% bootstrap interval
    mean_confidence: float | None
    confidence_interval: tuple[float, float] | None
    #: per attribution method, mean comprehensiveness and sufficiency over the group
    faithfulness: dict
    #: `TokenGroupTally.summary` over the group's texts
    token_groups: dict


@dataclass
class DataGroups:
    """Every group of the report, in order of first appearance, and how many rows had none."""

    column: str
    groups: list[DataGroupSummary]
    #: examples whose row had no value in the column (left out of every group, counted)
    ungrouped: int


def accuracy_interval(correct: int, labelled: int) -> tuple[float, float] | None:
    """The 95% Wilson score interval of `correct` out of `labelled`: unlike the normal
    approximation it stays inside [0, 1] and is honest for the small groups a dataset splits into."""
    if labelled == 0:
        return None
    ci = binomtest(correct, labelled).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def confidence_summary(confidences: list[float]) -> tuple[float | None, tuple[float, float] | None]:
    """The mean of the predicted classes' probabilities and its 95% bootstrap interval."""
    if not confidences:
        return None, None
    mean, low, high = bootstrap_mean(np.asarray(confidences, dtype=np.float64))
    return float(mean), (float(low), float(high))


def correct_count(metrics: Metrics) -> int:
    """Correct predictions among the labelled examples: the confusion matrix's diagonal."""
    return int(np.trace(np.asarray(metrics.confusion, dtype=np.int64)))
