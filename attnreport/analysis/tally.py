"""Dataset-level facts that need no model: what each example was, the metrics, mean faithfulness.

The analysis stage feeds it every example as it streams by; a site made from traces alone (no
model at hand) uses it the same way, so both get the same metrics and summaries.
"""

from __future__ import annotations

import numpy as np

from attnreport.analysis.attribution_methods import OUTPUT_RANGE
from attnreport.analysis.critical import CriticalLabel, critical_recall
from attnreport.analysis.data_groups import (
    DataGroups,
    DataGroupSummary,
    accuracy_interval,
    confidence_summary,
    correct_count,
)
from attnreport.analysis.predictions import Metrics, classification_metrics
from attnreport.analysis.results import AnalysisResults, ExampleAnalysis, ExampleSummary, Summaries
from attnreport.analysis.token_groups import TokenGroupTally
from attnreport.analysis.trust import trust_over_texts


class ExampleTally:
    """Running lists over the examples: their summaries, (truth, prediction) pairs, faithfulness."""

    def __init__(
        self,
        labels: list[str],
        *,
        critical: list[str] | tuple[str, ...] = (),
        token_groups: dict | None = None,
        group_column: str = "",
    ) -> None:
        self.labels = list(labels)
        self.token_group_config = dict(token_groups or {})
        #: `[data] group_column`; with one, a tally of the same kind per data group, in order of
        #: first appearance, and the count of examples without a group
        self.group_column = group_column
        self.by_group: dict[str, ExampleTally] = {}
        self.ungrouped = 0
        #: attention and attribution by token group (built-in groups and `[analysis.token_groups]`)
        self.groups = TokenGroupTally.from_config(token_groups or {})
        #: the labels whose misses are listed first (`[analysis] critical_labels`)
        self.critical = list(critical)
        #: per example with a prediction: (row, true label, predicted label, probability by label)
        self.scored: list[tuple[int, str | None, str, dict[str, float]]] = []
        self.rows: list[ExampleSummary] = []
        #: per example with a prediction: (true label, predicted label)
        self.judged: list[tuple[str | None, str]] = []
        self.faith: dict[str, dict[str, list[float]]] = {}
        #: per view, each text's (comprehensiveness, sufficiency) with its random rankings' (paired)
        self.paired: dict[str, list[tuple[float, float, float, float]]] = {}
        #: the explained output, its negligible effect and the attributions' unit (plural), from the
        #: first attributions seen; and the names of the attribution methods (the others are views)
        self.output: tuple[str, float, str] | None = None
        self.attributed: set[str] = set()
        self.agree: dict[str, list[float]] = {}

    def add(self, example: ExampleAnalysis) -> None:
        measured = self.groups.add(example.trace, _token_values(example))
        self._tally(example)
        if not self.group_column:
            return
        group = example.trace.group
        if group is None:
            self.ungrouped += 1
            return
        if group not in self.by_group:
            self.by_group[group] = ExampleTally(self.labels, token_groups=self.token_group_config)
        self.by_group[group]._tally(example)
        self.by_group[group].groups.record(measured)

    def _tally(self, example: ExampleAnalysis) -> None:
        """Everything but the token groups, which the caller measured once (`TokenGroupTally.add`)."""
        trace = example.trace
        predicted = None if example.prediction is None else example.prediction.label
        self.rows.append(ExampleSummary(trace.id, trace.text, trace.label, predicted))
        if predicted is not None:
            self.judged.append((trace.label, predicted))
            p = example.prediction
            probabilities = dict(zip(p.labels, p.probabilities.tolist(), strict=True))
            self.scored.append((len(self.rows) - 1, trace.label, predicted, probabilities))
        if example.explanation is None:
            return
        for method, f in example.explanation.faithfulness.items():
            slot = self.faith.setdefault(method, {"comprehensiveness": [], "sufficiency": []})
            if _finite(f["comprehensiveness"]) and _finite(f["sufficiency"]):
                slot["comprehensiveness"].append(f["comprehensiveness"])
                slot["sufficiency"].append(f["sufficiency"])
        faith = example.explanation.faithfulness
        rand = faith.get("random", {})
        if _finite(rand.get("comprehensiveness")) and _finite(rand.get("sufficiency")):
            for method, f in faith.items():
                if method != "random" and _finite(f["comprehensiveness"]) and _finite(f["sufficiency"]):
                    four = (
                        f["comprehensiveness"],
                        f["sufficiency"],
                        rand["comprehensiveness"],
                        rand["sufficiency"],
                    )
                    self.paired.setdefault(method, []).append(four)
        if self.output is None and example.explanation.attributions:
            a = next(iter(example.explanation.attributions.values()))
            self.output = (a["output"], float(a.get("negligible", 0.0)), a.get("unit", "token") + "s")
        self.attributed.update(example.explanation.attributions)
        for method, rho in example.explanation.agreement.items():
            if _finite(rho):
                self.agree.setdefault(method, []).append(rho)

    def metrics(self) -> Metrics | None:
        """Over the examples with a prediction: those whose outputs were not finite have none and
        are left out (and listed by the report)."""
        if not self.labels or not self.judged:
            return None
        return classification_metrics(self.labels, [t for t, _ in self.judged], [p for _, p in self.judged])

    def critical_labels(self) -> list[CriticalLabel]:
        """Recall and misses of each critical label (empty when none is named)."""
        return critical_recall(self.critical, self.scored)

    def summaries(self) -> Summaries:
        return Summaries(
            faithfulness={
                m: {k: float(np.mean(v)) for k, v in d.items()} | {"examples": len(d["comprehensiveness"])}
                for m, d in sorted(self.faith.items())
                if d["comprehensiveness"]
            },
            agreement_with_occlusion={
                m: {"spearman_mean": float(np.mean(v)), "examples": len(v)}
                for m, v in sorted(self.agree.items())
            },
            trust=self.trust(),
        )

    def trust(self) -> dict[str, dict]:
        """Per view, the verdict over the texts where it and the random rankings are finite (their
        count in `examples`); empty without attributions to read the explained output from."""
        if self.output is None:
            return {}
        output, negligible, unit = self.output
        out = {}
        for method, rows in sorted(self.paired.items()):
            comp, suff, rand_comp, rand_suff = (list(c) for c in zip(*rows, strict=True))
            judged = trust_over_texts(
                comp,
                rand_comp,
                suff,
                rand_suff,
                output=output,
                output_range=OUTPUT_RANGE.get(output, 1.0),
                negligible=negligible,
            )
            name = method.replace("_", " ")
            subject = f"The {name} attributions" if method in self.attributed else f"The {name} ranking"
            sentence = judged.sentence(subject=subject, unit=unit)
            out[method] = judged.to_dict() | {"examples": len(rows), "sentence": sentence}
        return out

    def data_groups(self) -> DataGroups | None:
        """Each data group's metrics, confidence, faithfulness and token groups; None without
        `[data] group_column`."""
        if not self.group_column:
            return None
        return DataGroups(
            column=self.group_column,
            groups=[_group_summary(name, tally) for name, tally in self.by_group.items()],
            ungrouped=self.ungrouped,
        )

    def results(self, **dataset_level) -> AnalysisResults:
        """The results with these tallies; `dataset_level` holds what needs the model (heads,
        distance profile, decision spaces, comparison), empty where it did not run."""
        dataset_level.setdefault("heads", [])
        dataset_level.setdefault("distance_profile", None)
        return AnalysisResults(
            rows=self.rows,
            metrics=self.metrics(),
            summaries=self.summaries(),
            critical=self.critical_labels(),
            token_groups=self.groups.summary(),
            data_groups=self.data_groups(),
            **dataset_level,
        )


def _group_summary(name: str, tally: ExampleTally) -> DataGroupSummary:
    metrics = tally.metrics()
    interval = None
    if metrics is not None:
        interval = accuracy_interval(correct_count(metrics), metrics.labelled)
    mean, spread = confidence_summary([probs[predicted] for _, _, predicted, probs in tally.scored])
    return DataGroupSummary(
        name=name,
        examples=len(tally.rows),
        predicted=len(tally.scored),
        metrics=metrics,
        accuracy_interval=interval,
        mean_confidence=mean,
        confidence_interval=spread,
        faithfulness=tally.summaries().faithfulness,
        token_groups=tally.groups.summary(),
    )


def _token_values(example: ExampleAnalysis):
    """The example's Shapley values (else occlusion), one per token: as they are when they run
    over tokens; over words, each word's value spread evenly over its tokens (a word list's words
    are whole, so a group's mass is exactly its words'); None over sentences or lines, whose value
    no token group can claim."""
    if example.explanation is None:
        return None
    trace = example.trace
    for method in ("shapley", "occlusion"):
        entry = example.explanation.attributions.get(method)
        if not entry:
            continue
        unit = entry.get("unit", "token")
        if unit == "token" and len(entry["values"]) == trace.n_tokens:
            return np.asarray(entry["values"], dtype=np.float64)
        if unit == "word" and len(entry.get("units", ())) == len(entry["values"]):
            return spread_over_tokens(entry["units"], entry["values"], trace.offsets, trace.special)
    return None


def spread_over_tokens(units: list[dict], values, offsets: np.ndarray, special: np.ndarray) -> np.ndarray:
    """Per token, its unit's value over the unit's token count (a token overlapping a unit's
    characters belongs to it; special tokens and tokens in no unit get 0)."""
    out = np.zeros(len(offsets), dtype=np.float64)
    starts, stops = offsets[:, 0], offsets[:, 1]
    content = ~np.asarray(special, dtype=bool) & (stops > starts)
    for unit, value in zip(units, values, strict=True):
        inside = content & (starts < unit["stop"]) & (stops > unit["start"])
        if inside.any():
            out[inside] = float(value) / inside.sum()
    return out


def _finite(x) -> bool:
    return x is not None and bool(np.isfinite(x))
