"""A classification report's `metrics` (accuracy, confusion, critical labels' recall and misses)
and `groups` (the same per data group, with intervals)."""

from __future__ import annotations

from attnreport.analysis.data_groups import DataGroups, DataGroupSummary
from attnreport.analysis.results import AnalysisResults


def _critical(results: AnalysisResults, entries: list[dict]) -> dict:
    """Per critical label: recall, and the misses (most confident first), each with its page."""
    out = {}
    for c in results.critical:
        out[c.label] = {
            "examples": c.examples,
            "caught": c.caught,
            "recall": c.recall,
            "missed": [
                {
                    "row": m.row,
                    "id": entries[m.row]["id"],
                    "page": entries[m.row]["page"],
                    "prediction": m.prediction,
                    "confidence": m.confidence,
                    "label_probability": m.label_probability,
                }
                for m in c.misses
            ],
        }
    return out


def metrics_section(results: AnalysisResults, entries: list[dict]) -> dict:
    """report.json's `metrics`: accuracy, confusion and counts over the labelled examples, with
    each critical label's recall and misses (their pages from `entries`); empty without labels or
    a prediction."""
    m = results.metrics
    if m is None:
        return {}
    critical = {"critical": _critical(results, entries)} if results.critical else {}
    return {
        "accuracy": m.accuracy,
        "labelled": m.labelled,
        "confusion": m.confusion,
        "true_counts": m.true_counts,
        "predicted_counts": m.predicted_counts,
        "unknown_labels": m.unknown_labels,
        "examples": results.examples,
        **critical,
    }


def groups_section(groups: DataGroups) -> dict:
    """report.json's `groups`: per data group the metrics, confidence, faithfulness and token
    groups, each with its interval where it has one."""

    def one(g: DataGroupSummary) -> dict:
        m = g.metrics
        return {
            "name": g.name,
            "examples": g.examples,
            "predicted": g.predicted,
            "labelled": 0 if m is None else m.labelled,
            "accuracy": None if m is None else m.accuracy,
            "accuracy_interval": None if g.accuracy_interval is None else list(g.accuracy_interval),
            "confusion": None if m is None else m.confusion,
            "predicted_counts": None if m is None else m.predicted_counts,
            "mean_confidence": g.mean_confidence,
            "confidence_interval": None if g.confidence_interval is None else list(g.confidence_interval),
            "faithfulness": g.faithfulness,
            "token_groups": g.token_groups,
        }

    return {"column": groups.column, "ungrouped": groups.ungrouped, "groups": [one(g) for g in groups.groups]}
