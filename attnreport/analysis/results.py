"""The analysis stage's typed results: per example as the traces stream by, per dataset at the end.

Later stages (scenes, site) read these, never each other's output: `site/report/` is the one
place that turns them into ``report.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnreport.analysis.critical import CriticalLabel
from attnreport.analysis.data_groups import DataGroups
from attnreport.analysis.decision import DecisionSpace
from attnreport.analysis.explain import Explanation
from attnreport.analysis.heads import HeadScores
from attnreport.analysis.predictions import Metrics, softmax
from attnreport.analysis.rollout import read_row, rollout
from attnreport.core.modelcard import ModelCard
from attnreport.core.trace import Trace


@dataclass
class Prediction:
    """The model's class probabilities for one example (only when its logits are finite)."""

    labels: list[str]
    probabilities: np.ndarray

    @property
    def best(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def label(self) -> str:
        return self.labels[self.best]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.best])


@dataclass
class ExampleAnalysis:
    """One example: its trace and everything computed from it, each fact computed once."""

    trace: Trace
    #: the attentions as shown: the trace's, with non-finite weights drawn as 0 (and counted)
    attentions: np.ndarray
    #: the rollout matrix ``[n, n]`` of `attentions` (Abnar & Zuidema 2020)
    rollout: np.ndarray
    #: the rollout row of the position the prediction is read from
    rollout_row: np.ndarray
    #: None when the model has no labels or its logits are not finite
    prediction: Prediction | None
    #: how many of the model's outputs were NaN or infinite, by output; empty when all finite
    nonfinite: dict[str, int] = field(default_factory=dict)
    #: attributions, flow and faithfulness; None when the build ran no per-example analysis
    explanation: Explanation | None = None
    #: positions of the tokens the tokenizer could not read ([UNK]): the model saw none of
    #: their characters, so the page marks them
    unknown: list[int] = field(default_factory=list)


def nonfinite_outputs(trace: Trace) -> dict[str, int]:
    """How many of the model's outputs for `trace` are NaN or infinite, by output; empty when
    all are finite. A model that gives NaN (overflow in fp16, broken weights) must not get a
    confident-looking page: its prediction is withheld and its page says what was wrong."""
    counts = {}
    outputs = {"logits": trace.logits, "attentions": trace.attentions, "hidden": trace.hidden}
    for name, values in outputs.items():
        if values is not None:
            bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
            if bad:
                counts[name] = bad
    return counts


def describe(
    trace: Trace,
    card: ModelCard,
    explanation: Explanation | None = None,
    *,
    unknown_token: str | None = None,
) -> ExampleAnalysis:
    """The facts every page shows about a trace: rollout, prediction, non-finite outputs, and the
    tokens that are `unknown_token` (the tokenizer's [UNK], when it has one)."""
    broken = nonfinite_outputs(trace)
    attentions = trace.attentions
    if broken.get("attentions"):
        attentions = np.nan_to_num(attentions, nan=0.0, posinf=0.0, neginf=0.0)
    matrix = rollout(attentions)
    prediction = None
    if trace.logits is not None and card.labels and not broken.get("logits"):
        prediction = Prediction(labels=list(card.labels), probabilities=softmax(trace.logits))
    return ExampleAnalysis(
        trace=trace,
        attentions=attentions,
        rollout=matrix,
        rollout_row=read_row(matrix, card.read_position),
        prediction=prediction,
        nonfinite=broken,
        explanation=explanation,
        unknown=[
            i
            for i, (token, special) in enumerate(zip(trace.tokens, trace.special, strict=True))
            if unknown_token is not None and token == unknown_token and not special
        ],
    )


@dataclass
class ExampleSummary:
    """The few facts of an example that dataset-level views (the decision space) show."""

    id: str
    text: str
    label: str | None
    prediction: str | None


@dataclass
class HeadSummary:
    """A head's pattern scores over the dataset, its typical examples named by id."""

    scores: HeadScores
    typical_ids: list[str]


@dataclass
class Comparison:
    """The same rows through a second run (another model, or the int8 export)."""

    name: str
    architecture: str
    file: str
    labels: list[str]
    #: per example, `compare_pair`'s facts, in row order
    pairs: list[dict]
    #: `summarise_comparison` of the pairs
    summary: dict


@dataclass
class Summaries:
    """Dataset-level means of faithfulness and of agreement with occlusion, per method."""

    faithfulness: dict[str, dict]
    agreement_with_occlusion: dict[str, dict]
    #: per view, the trust verdict over the texts (`analysis.trust.trust_over_texts`, as a dict)
    trust: dict[str, dict] = field(default_factory=dict)


@dataclass
class AnalysisResults:
    """What the analysis stage knows once every trace has gone by."""

    #: every example streamed, in row order
    rows: list[ExampleSummary]
    #: classification metrics over the examples with a prediction; None without any
    metrics: Metrics | None
    summaries: Summaries
    heads: list[HeadSummary]
    #: attention by token distance per layer (`DistanceDecay.profile`); None where not measured
    distance_profile: dict | None
    #: the default decision space (None when there is none to draw) and the extra layers' spaces
    decision_space: DecisionSpace | None = None
    layer_spaces: list[DecisionSpace] = field(default_factory=list)
    comparison: Comparison | None = None
    #: recall and misses per critical label (`[analysis] critical_labels`), by label
    critical: list[CriticalLabel] = field(default_factory=list)
    #: attention and attribution by token group (`TokenGroupTally.summary`); None where not tallied
    token_groups: dict | None = None
    #: results by data group (`[data] group_column`); None without one
    data_groups: DataGroups | None = None

    @property
    def examples(self) -> int:
        return len(self.rows)
