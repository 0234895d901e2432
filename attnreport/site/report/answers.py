"""A generation report's entry for one prompt and its answer: every step's scores, alternatives,
logit lens and attention by segment, and the answer's attributions over the prompt's units."""

from __future__ import annotations

import numpy as np

from attnreport.analysis.answer_glance import glance
from attnreport.analysis.attention_views import DEFAULT_VIEW, VIEWS, ranking_labels, ranking_name
from attnreport.analysis.generation import SEGMENTS, GenerationAnalysis, segment_name
from attnreport.analysis.sinks import SINK_RULE
from attnreport.core.jsonsafe import NonFinite, clean


def _top(ids, probabilities, tokens) -> list[dict]:
    return [
        {"token": token, "id": int(i), "probability": float(p)}
        for i, p, token in zip(ids, probabilities, tokens, strict=True)
    ]


def _segments(shares) -> dict:
    """One step's attention by segment: the mean over layers, and each layer's."""
    return {
        **{name: float(v) for name, v in zip(SEGMENTS, shares.mean(axis=0), strict=True)},
        "by_layer": [dict(zip(SEGMENTS, map(float, layer), strict=True)) for layer in shares],
    }


def _rows(values) -> list | None:
    return None if values is None else np.asarray(values, dtype=np.float64).tolist()


def _segment_unit(g, name: str) -> dict:
    """A segment unit as report.json lists it: a chat's earlier turn spans its content in
    `input_text`; the template and the answer so far span no one piece of it."""
    unit = {"start": None, "stop": None, "text": segment_name(g, name), "segment": name}
    if name.startswith("turn-"):
        turn = g.turns[int(name.removeprefix("turn-"))]
        unit |= {"start": turn.start, "stop": turn.stop, "turn": int(name.removeprefix("turn-"))}
    return unit


def answer_attributions(result: GenerationAnalysis) -> dict:
    """`attributions` (by method), `contrasts`, `attribution_faithfulness` and `attribution_lds` (the
    linear datamodeling score, `analysis.lds`) of one answer: unit
    spans index the input text (`input_text`, the template included); values run per answer token,
    then over units."""
    ex, g = result.explanation, result.trace
    if ex is None:
        return {}
    units = ex.units
    declared = {
        "unit": units.kind if units is not None else "custom",
        "units": None
        if units is None
        else units.to_list(g.text) + [_segment_unit(g, s) for s in ex.segments],
        "output": ex.output,
        "baseline": ex.baseline,
        "evaluations": ex.evaluations,
    }
    attributions, contrasts = {}, []
    for name, a in ex.attributions.items():
        attributions[name] = {
            **declared,
            "values": _rows(a.values),
            "stderr": _rows(a.std_error),
            "answer": _rows(a.answer),
            "answer_stderr": _rows(a.answer_std_error),
            "exact": a.exact,
            "estimator": a.method,
            "efficiency_gap": a.efficiency_gap or None,
        }
        for t, foil in enumerate(ex.foils.tolist()):
            if foil >= 0:
                contrasts.append(
                    {
                        "step": t,
                        "target": g.tokens[t],
                        "foil": g.top_tokens[t][foil],
                        "foil_id": int(g.top_ids[t][foil]),
                        "method": name,
                        "source": "runner_up",
                        "value": "log_probability_difference",
                        "values": _rows(a.contrasts[t]),
                    }
                )
        for (t, foil_id, foil), values in zip(ex.requested, a.requested, strict=True):
            contrasts.append(
                {
                    "step": t,
                    "target": g.tokens[t],
                    "foil": foil,
                    "foil_id": foil_id,
                    "method": name,
                    "source": "asked",
                    "value": "log_probability_difference",
                    "values": _rows(values),
                }
            )

    def strongest(name: str) -> tuple[bool, float]:
        c = ex.faithfulness[name].get("comprehensiveness")
        finite = c is not None and np.isfinite(c)
        return (not finite, -c if finite else 0.0)

    return {
        "attributions": attributions,
        "contrasts": contrasts,
        "attribution_faithfulness": ex.faithfulness,
        # the views by comprehensiveness, strongest first (a value that is not finite last)
        "faithfulness_order": sorted(ex.faithfulness, key=strongest),
        "token_faithfulness": ex.token_faithfulness,
        # by view: Spearman of predicted and actual values on held-out random ablations
        "attribution_lds": {"ablations": ex.lds_ablations, "by_view": ex.lds} if ex.lds else None,
        "attribution_skipped": ex.skipped,
    }


def attention_view(result: GenerationAnalysis) -> dict:
    """Which attention view the page opens on and `looked_at` reads, and which others it offers."""
    view = VIEWS[result.default_view]
    return {
        "default": view.name,
        "aggregate": DEFAULT_VIEW[1],
        "ranking": ranking_name(view.name, DEFAULT_VIEW[1]),
        "ranking_labels": ranking_labels(),
        "label": view.label,
        "description": view.description,
        "available": list(result.views),
    }


def sinks_entry(result: GenerationAnalysis) -> dict | None:
    """The answer's attention sinks, by layer: positions, their tokens, and the share of the
    answer's attention (mean of its steps and the layer's heads) they take."""
    sinks, g = result.sinks, result.trace
    if sinks is None:
        return None
    tokens = [*g.prompt_tokens, *g.tokens[:-1]]
    return {
        "rule": SINK_RULE,
        "positions": [{"position": p, "token": tokens[p]} for p in sinks.positions],
        "by_layer": [
            {
                "layer": layer,
                "positions": positions,
                "share": float(sinks.share[layer].mean()) if g.steps else 0.0,
            }
            for layer, positions in enumerate(sinks.layers)
        ],
    }


def generation_entry(result: GenerationAnalysis, page: str, *, page_nonfinite: int = 0) -> dict:
    """The report's entry for one prompt and its answer (`generation`: every step's scores, its
    alternatives, its logit lens and where its attention went)."""
    g = result.trace
    steps = []
    for t in range(g.steps):
        step = {
            "probability": float(g.probability[t]),
            "entropy": float(g.entropy[t]),
            "rank": int(g.rank[t]),
            "top": _top(g.top_ids[t], g.top_probabilities[t], g.top_tokens[t]),
            "attention_segments": _segments(result.segments[t]),
            "sink_share": result.sinks.step_share(t) if result.sinks is not None else 0.0,
            "looked_at": result.looked_at[t] if result.looked_at else [],
        }
        if g.lens_probability is not None:
            step["logit_lens"] = [
                {
                    "layer": layer,
                    "probability": float(g.lens_probability[layer, t]),
                    "rank": int(g.lens_rank[layer, t]),
                    "top": _top(
                        g.lens_top_ids[layer, t],
                        g.lens_top_probabilities[layer, t],
                        g.lens_top_tokens[layer][t],
                    ),
                }
                for layer in range(g.layers + 1)
            ]
        steps.append(step)
    entry = {
        "id": g.id,
        "page": page,
        "text": g.prompt,
        "label": g.label,
        "generation": {
            "input_text": g.text,
            "template": g.template,
            "turns": [t.to_dict() for t in g.turns],
            "prompt_tokens": list(g.prompt_tokens),
            "prompt_ids": g.prompt_ids.tolist(),
            "prompt_offsets": g.prompt_offsets.tolist(),
            "special": g.special.tolist(),
            "from_template": g.from_template.tolist(),
            "tokens": list(g.tokens),
            "ids": g.ids.tolist(),
            "text": g.answer,
            "forced": g.forced,
            "stop_reason": g.stop_reason,
            "log_probability": result.log_probability,
            "mean_probability": result.mean_probability,
            "min_probability": result.min_probability,
            "min_step": result.min_step,
            "glance": glance(result),
            "attention_view": attention_view(result),
            "sinks": sinks_entry(result),
            # the prompt's own n x n attention (rollout, the 3D scene) was not kept: the limit that
            # dropped it (`[generate] prompt_attention_limit`), None when it was kept
            "prompt_attention_limit": g.extra.get("prompt_attention_limit")
            if g.prompt_attentions is None
            else None,
            "steps": steps,
            **answer_attributions(result),
        },
    }
    derived = NonFinite()
    entry = clean(entry, derived)
    if derived.count + page_nonfinite:
        entry["nonfinite"] = {"derived_values": derived.count + page_nonfinite}
    return entry
