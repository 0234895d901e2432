"""A classification report's dataset-level views: the head atlas, the dataset means of the
analysis, the decision spaces (with each drawn example's point) and the comparison with a second
model."""

from __future__ import annotations

from dataclasses import asdict

from attnreport.analysis.decision import DecisionSpace, state_name
from attnreport.analysis.results import AnalysisResults, Comparison, HeadSummary
from attnreport.core.jsonsafe import clean


def heads_section(heads: list[HeadSummary]) -> list[dict]:
    """report.json's `heads`: each head's pattern scores and its typical examples' ids."""
    return [{**asdict(h.scores), "typical": h.typical_ids} for h in heads]


def analysis_section(results: AnalysisResults) -> dict:
    """report.json's `analysis`: the dataset means of faithfulness and of agreement with
    occlusion, per method, each view's trust verdict (`analysis.trust`), and the attention by
    distance where it was measured."""
    out = {
        "faithfulness": results.summaries.faithfulness,
        "agreement_with_occlusion": results.summaries.agreement_with_occlusion,
        "trust": results.summaries.trust,
    }
    if results.distance_profile is not None:
        out["attention_by_distance"] = results.distance_profile
    return out


def decision_sections(space: DecisionSpace, layer_spaces: list[DecisionSpace], layers: int) -> dict:
    """report.json's `decision_space` (the default one) and `decision_spaces` (every layer's, by
    hidden state: `layer` 0 is the embeddings, l the state after layer l - 1, said in `where`;
    the default marked)."""
    return {
        "decision_space": space.summary(),
        "decision_spaces": sorted(
            (
                {
                    **s.summary(),
                    "layer": s.layer_index(layers),
                    # the state in words, layers counted from 0 as everywhere else: "after layer 2"
                    "where": state_name(s.layer_index(layers), layers),
                    "default": s is space,
                }
                for s in (space, *layer_spaces)
            ),
            key=lambda entry: entry["layer"],
        ),
    }


def with_points(entries: list[dict], space: DecisionSpace) -> list[dict]:
    """The entries with each drawn example's point in the decision space and the slice's class."""
    rows = range(len(entries)) if space.rows is None else space.rows
    out = list(entries)
    for row, xyz, on_slice in zip(rows, space.coords, space.slice_predictions, strict=True):
        out[row] = {**out[row], "xyz": clean(xyz.tolist()), "slice_prediction": space.labels[int(on_slice)]}
    return out


def comparison_section(c: Comparison) -> dict:
    """report.json's `compare`: the second model, the summary of both runs and every pair."""
    return {
        "name": c.name,
        "model": {"architecture": c.architecture, "file": c.file, "labels": c.labels},
        **c.summary,
        "examples_detail": c.pairs,
    }


def _with_points(entries: list[dict], space: DecisionSpace) -> list[dict]:
    """The entries with each drawn example's point in the decision space and the slice's class."""
    rows = range(len(entries)) if space.rows is None else space.rows
    out = list(entries)
    for row, xyz, on_slice in zip(rows, space.coords, space.slice_predictions, strict=True):
        out[row] = {**out[row], "xyz": clean(xyz.tolist()), "slice_prediction": space.labels[int(on_slice)]}
    return out
