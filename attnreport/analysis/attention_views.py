"""Ways of reading a causal LM's attention rows, one registry: raw, beyond the sink, norm-weighted.

Raw weights say where a head's softmax went, not what reached the position: on a real LLM most
of it goes to an attention sink whose value vectors are small (`analysis.sinks`). Two published
corrections, alone or together:

- **beyond the sink**: the sink positions (a sink in any layer) set apart in every layer and each
  row renormalised over the rest (the share set apart is stated next to it);
- **norm-weighted** (Kobayashi et al. 2020, "Attention is Not Only a Weight"): each weight times
  the norm of what it carries, ``α_ij · ‖v_j W_O^h‖``, renormalised per row, so a key whose value
  adds nothing to the residual stream gets nothing. Needs the value norms the decoder records
  (`GenerationTrace.value_norms`); a trace without them has no norm-weighted views.

Every view is a function of the raw rows, so it applies alike to an answer's rows ``[L, H, T, K]``
and to the full causal matrix ``[L, H, N, N]`` that rollout multiplies. Which view a page opens on
is the one that measured most faithful (`DEFAULT_VIEW`; the README's table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnreport.analysis.rollout import rollout
from attnreport.analysis.sinks import Sinks


@dataclass(frozen=True)
class AttentionView:
    """One way of reading attention rows. `label` names it on the page; `weighted` needs value norms."""

    name: str
    label: str
    weighted: bool
    folds_sinks: bool
    description: str


VIEWS: dict[str, AttentionView] = {
    view.name: view
    for view in (
        AttentionView(
            "attention", "raw attention", False, False, "the softmax weights as the model computed them"
        ),
        AttentionView(
            "beyond_sink",
            "beyond the sink",
            False,
            True,
            "the sink positions set apart, each row renormalised over the other positions",
        ),
        AttentionView(
            "norm_weighted",
            "norm-weighted",
            True,
            False,
            "each weight times the norm of the value it carries, ‖α·v·W_O‖ (Kobayashi et al. 2020), "
            "renormalised per row",
        ),
        AttentionView(
            "norm_weighted_beyond_sink",
            "norm-weighted, beyond the sink",
            True,
            True,
            "norm-weighted, with the sink positions set apart and each row renormalised",
        ),
    )
}

#: how a view's rows become one row per answer token: the last layer's (mean of heads), the mean of
#: every layer and head, or rollout through every layer
AGGREGATES = ("attention", "mean_attention", "rollout")

#: the view and aggregate a causal LM's page opens on: of the attention views, the one whose ranking
#: of the prompt's units measured most faithful on the demo's real chat model (ERASER
#: comprehensiveness minus sufficiency, mean over answer tokens; README, "Attention sinks, and
#: which attention view to trust"). Rollout measured at or below random there: in a causal model
#: every row can only read earlier positions, so rollout's mass drains onto the first ones.
DEFAULT_VIEW = ("beyond_sink", "attention")


#: each aggregate in words
AGGREGATE_LABELS = {"attention": "last layer", "mean_attention": "mean of layers", "rollout": "rollout"}


def ranking_labels() -> dict[str, str]:
    """Every view's rankings in words, by ranking name: "beyond the sink, last layer"."""
    return {
        ranking_name(view.name, aggregate): f"{view.label}, {AGGREGATE_LABELS[aggregate]}"
        for view in VIEWS.values()
        for aggregate in AGGREGATES
    }


def ranking_name(view: str, aggregate: str) -> str:
    """The name of a view's ranking in the faithfulness tables: the raw view keeps its old names."""
    return aggregate if view == "attention" else f"{view}_{aggregate}"


def available_views(value_norms: np.ndarray | None) -> list[str]:
    return [name for name, view in VIEWS.items() if value_norms is not None or not view.weighted]


def aggregate_rows(rows: np.ndarray, aggregate: str) -> np.ndarray:
    """A view's rows ``[L, H, T, K]`` as one row per answer token ``[T, K]`` (not rollout, which
    needs the full matrix: `view_rollout`)."""
    rows = np.asarray(rows, dtype=np.float64)
    if aggregate == "attention":
        return rows[-1].mean(axis=0)
    if aggregate == "mean_attention":
        return rows.mean(axis=(0, 1))
    raise ValueError(f"aggregate {aggregate!r} needs more than the rows; choose attention or mean_attention")


def default_view(value_norms: np.ndarray | None) -> str:
    """`DEFAULT_VIEW`'s view where the trace has what it needs, else its unweighted counterpart."""
    name = DEFAULT_VIEW[0]
    if VIEWS[name].weighted and value_norms is None:
        return "beyond_sink" if VIEWS[name].folds_sinks else "attention"
    return name


def _renormalised(weights: np.ndarray) -> np.ndarray:
    total = weights.sum(axis=-1, keepdims=True)
    return np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)


def _view(name: str) -> AttentionView:
    if name not in VIEWS:
        raise ValueError(f"attention view {name!r} is unknown; choose one of {', '.join(VIEWS)}")
    return VIEWS[name]


def view_layer(
    name: str, rows: np.ndarray, layer: int, *, sinks: Sinks | None, value_norms: np.ndarray | None
) -> np.ndarray:
    """One layer's raw rows ``[H, Q, K]`` read through view `name` (see `view_rows`)."""
    view = _view(name)
    out = np.asarray(rows, dtype=np.float64)
    if not view.weighted and not view.folds_sinks:
        return out
    keys = out.shape[-1]
    if view.weighted:
        if value_norms is None:
            raise ValueError(f"attention view {name!r} needs value norms, which this trace lacks")
        out = out * np.asarray(value_norms[layer], dtype=np.float64)[:, None, :keys]
    if view.folds_sinks and sinks is not None and sinks.positions:
        out = out * ~sinks.mask(keys)
    return _renormalised(out)


def view_rows(
    name: str, rows: np.ndarray, *, sinks: Sinks | None, value_norms: np.ndarray | None
) -> np.ndarray:
    """``rows [L, H, Q, K]`` (raw attention over the first K positions) read through view `name`.

    ``value_norms [L, H, >= K]``: ``‖v_j W_O^h‖`` per layer, head and key; `sinks` the positions
    set apart per layer."""
    _view(name)
    return np.stack(
        [
            view_layer(name, rows[layer], layer, sinks=sinks, value_norms=value_norms)
            for layer in range(len(rows))
        ]
    )


def view_rollout(
    name: str, full: np.ndarray, *, sinks: Sinks | None, value_norms: np.ndarray | None, residual: float = 0.5
) -> np.ndarray:
    """Rollout (Abnar & Zuidema 2020, `analysis.rollout`) of the full causal attention ``[L, H, N, N]``
    read through view `name`: ``[N, N]``. One layer at a time, so a long prompt holds one layer's
    copy, not the model's."""
    means = np.stack(
        [
            view_layer(name, full[layer], layer, sinks=sinks, value_norms=value_norms).mean(axis=0)
            for layer in range(len(full))
        ]
    )
    return rollout(means[:, None], residual=residual)
