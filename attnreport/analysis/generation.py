"""What each generated token looked at: attention rows by layer, rollout, and attention by segment,
each read through every attention view (`attention_views`: raw, beyond the sink, norm-weighted).

A generation trace keeps the attention row of the position that chose each answer token, and
the prompt's own n×n when the prompt is short enough. Together they are the whole causal
attention over every position up to the last choosing one, so rollout (Abnar & Zuidema 2020,
exactly as for classifiers) can be read for every step: row ``n - 1 + t`` is step ``t``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from attnreport.analysis.answer_attribution import SEGMENT_UNITS, AnswerExplanation
from attnreport.analysis.attention_views import (
    AGGREGATES,
    DEFAULT_VIEW,
    aggregate_rows,
    available_views,
    default_view,
    ranking_name,
    view_rollout,
    view_rows,
)
from attnreport.analysis.rollout import rollout
from attnreport.analysis.sinks import Sinks, find_sinks
from attnreport.analysis.units import Units, attribution_units
from attnreport.core.generation import GenerationTrace
from attnreport.core.tokens import display_tokens

#: where a step's attention can go: the chat template's tokens, the user's prompt, the answer so far
SEGMENTS = ("template", "prompt", "answer")


def full_attention(trace: GenerationTrace) -> np.ndarray | None:
    """``[L, H, N, N]`` causal attention over positions ``0 .. N - 1`` (``N = n + T - 1``): the
    prompt's own rows, then the choosing rows of steps 1 .. T - 1; None without the prompt's."""
    if trace.prompt_attentions is None:
        return None
    n, steps = trace.n_prompt, trace.steps
    size = n + steps - 1
    full = np.zeros((trace.layers, trace.heads, size, size), dtype=np.float64)
    full[:, :, :n, :n] = trace.prompt_attentions
    full[:, :, n:, :] = trace.attentions[:, :, 1:, :]
    return full


def step_rollout(trace: GenerationTrace, *, residual: float = 0.5) -> np.ndarray | None:
    """``[T, N]``: each step's rollout row (the choosing position's), None without the prompt's
    own attention (a prompt longer than the trace kept)."""
    full = full_attention(trace)
    if full is None:
        return None
    matrix = rollout(full, residual=residual)
    return matrix[trace.n_prompt - 1 + np.arange(trace.steps)]


def segment_masks(trace: GenerationTrace) -> np.ndarray:
    """``[3, N]`` boolean: which keys are the template's, the user's prompt's and the answer's."""
    n, size = trace.n_prompt, trace.n_prompt + trace.steps - 1
    masks = np.zeros((len(SEGMENTS), size), dtype=bool)
    masks[0, :n] = trace.from_template
    masks[1, :n] = ~trace.from_template
    masks[2, n:] = True
    return masks


def segment_shares(trace: GenerationTrace) -> np.ndarray:
    """``[T, L, 3]``: per step and layer, the share of the head-averaged attention on each of
    `SEGMENTS` (rows sum to 1 where the model's attention rows do)."""
    heads_mean = trace.attentions.astype(np.float64).mean(axis=1)  # [L, T, N]
    return np.einsum("ltn,sn->tls", heads_mean, segment_masks(trace).astype(np.float64))


def user_text(trace: GenerationTrace) -> str:
    """The input text with every character outside the user's prompt tokens blanked, so that no
    unit runs into the chat template around it (offsets are unchanged)."""
    keep = np.zeros(len(trace.text), dtype=bool)
    for a, b in np.asarray(trace.prompt_offsets)[~not_user(trace)].tolist():
        keep[a:b] = True
    return "".join(ch if kept else " " for ch, kept in zip(trace.text, keep, strict=True))


def not_user(trace: GenerationTrace) -> np.ndarray:
    """Prompt tokens that are no unit of the prompt's own: special tokens, the chat template's,
    and in a chat every token outside the last user turn (each earlier turn is one unit of its own:
    `turn_members`)."""
    out = np.asarray(trace.special, dtype=bool) | np.asarray(trace.from_template, dtype=bool)
    if trace.turns:
        out = out | ~_overlapping(trace, trace.turns[-1])
    return out


def _overlapping(trace: GenerationTrace, turn) -> np.ndarray:
    """``[n]``: the prompt's non-special tokens whose characters overlap `turn`'s content."""
    offsets = np.asarray(trace.prompt_offsets)
    hit = (offsets[:, 1] > turn.start) & (offsets[:, 0] < turn.stop)
    return hit & ~np.asarray(trace.special, dtype=bool)


def turn_members(trace: GenerationTrace) -> dict[str, np.ndarray]:
    """The positions of each turn before the last (the user's prompt, cut into words), by unit name
    ``"turn-<i>"`` (`i` indexes `trace.turns`), each only when it has a token: one unit per turn,
    so an answer's attribution says which turn made it. A token the last turn shares is the last's."""
    out = {}
    if not trace.turns:
        return out
    taken = _overlapping(trace, trace.turns[-1])
    for i, turn in enumerate(trace.turns[:-1]):
        mine = _overlapping(trace, turn) & ~taken
        taken = taken | mine
        if mine.any():
            out[f"turn-{i}"] = np.flatnonzero(mine)
    return out


def turn_name(trace: GenerationTrace, i: int) -> str:
    """What the report calls turn `i` as a unit: "[system prompt]", "[default system prompt]" (the
    template's own), "[user turn k]" or "[assistant turn k]" (k counts the chat's user and assistant
    turns from 1)."""
    turn = trace.turns[i]
    if turn.role == "system":
        return "[default system prompt]" if turn.injected else "[system prompt]"
    k = sum(t.role != "system" for t in trace.turns[: i + 1])
    return f"[{turn.role} turn {k}]"


def segment_name(trace: GenerationTrace, name: str) -> str:
    """What the report calls segment unit `name` (`segment_members`)."""
    if name.startswith("turn-"):
        return turn_name(trace, int(name.removeprefix("turn-")))
    return SEGMENT_UNITS[name]


def prompt_units(trace: GenerationTrace, kind: str = "word", *, max_tokens: int = 64) -> Units:
    """The units of the user's prompt (`analysis.units`); the template's tokens are no unit."""
    return attribution_units(
        user_text(trace), trace.prompt_offsets, not_user(trace), kind, max_tokens=max_tokens
    )


def segment_members(trace: GenerationTrace) -> dict[str, np.ndarray]:
    """The positions of the units beside the prompt's words: a chat's earlier turns
    (`turn_members`), the chat template's tokens (and the special ones), and the answer written so
    far (input positions n .. n + T - 2); each only when it has a token."""
    out = turn_members(trace)
    rest = not_user(trace)
    for positions in out.values():
        rest[positions] = False
    template = np.flatnonzero(rest)
    if len(template):
        out["template"] = template
    if trace.steps > 1:
        out["answer"] = np.arange(trace.n_prompt, trace.n_prompt + trace.steps - 1)
    return out


@dataclass
class ViewedAttention:
    """An answer's attention read through one view (`analysis.attention_views`): the answer's rows
    ``[L, H, T, K]`` and their rollout rows ``[T, K]`` (None for a prompt longer than was kept)."""

    name: str
    rows: np.ndarray
    rollout: np.ndarray | None

    def aggregated(self, aggregate: str) -> np.ndarray | None:
        """One row per answer token ``[T, K]`` (`attention_views.AGGREGATES`); None for rollout
        without the prompt's own attention."""
        return self.rollout if aggregate == "rollout" else aggregate_rows(self.rows, aggregate)

    def rankings(self) -> dict[str, np.ndarray]:
        """Every aggregate's rows, named as the faithfulness tables name them."""
        rows = {ranking_name(self.name, a): self.aggregated(a) for a in AGGREGATES}
        return {name: r for name, r in rows.items() if r is not None}


def viewed_attention(trace: GenerationTrace, sinks: Sinks) -> dict[str, ViewedAttention]:
    """The answer's attention through every view the trace allows (`available_views`)."""
    norms = trace.value_norms
    full = full_attention(trace) if trace.steps else None
    choosing = trace.n_prompt - 1 + np.arange(trace.steps)
    out = {}
    for name in available_views(norms):
        rows = view_rows(name, trace.attentions, sinks=sinks, value_norms=norms).astype(np.float32)
        roll = None
        if full is not None:
            roll = view_rollout(name, full, sinks=sinks, value_norms=norms)[choosing]
        out[name] = ViewedAttention(name=name, rows=rows, rollout=roll)
    return out


#: how many positions `looked_at` names per step
LOOKED_AT = 5


def looked_at(
    trace: GenerationTrace, view: ViewedAttention, aggregate: str, *, top: int = LOOKED_AT
) -> list[list[dict]]:
    """Per step, the `top` positions the step's row weighs most under `view` and `aggregate`
    (`attention_views.AGGREGATES`), strongest first. The writing position itself is left out: it
    holds the token just written, which late layers and rollout's residual term weigh heavily."""
    rows = view.aggregated(aggregate)
    if rows is None:  # rollout without the prompt's attention
        rows = view.aggregated("mean_attention")
    masks = segment_masks(trace)
    prompt = display_tokens(trace.text, trace.prompt_tokens, trace.prompt_offsets.tolist(), trace.special)
    tokens = [*prompt, *trace.tokens[:-1]]
    out = []
    for t in range(trace.steps):
        seen = trace.n_prompt - 1 + t  # the writing position: it reads keys 0 .. seen
        weights = np.asarray(rows[t, :seen], dtype=np.float64)
        order = np.argsort(-weights, kind="stable")[:top]
        out.append(
            [
                {
                    "position": int(k),
                    "token": tokens[k],
                    "weight": float(weights[k]),
                    "segment": SEGMENTS[int(np.argmax(masks[:, k]))],
                }
                for k in order
                if weights[k] > 0
            ]
        )
    return out


@dataclass
class GenerationAnalysis:
    """One prompt's answer, analysed: everything the page and report.json show beyond the trace."""

    trace: GenerationTrace
    #: ``[T, L, 3]`` attention shares by segment (`SEGMENTS`)
    segments: np.ndarray
    #: the answer's log-probability, sum over its tokens (nats)
    log_probability: float
    mean_probability: float
    min_probability: float
    #: the step with the least likely token (None for an empty answer)
    min_step: int | None
    #: the attention sinks of the answer's rows (`analysis.sinks`)
    sinks: Sinks | None = None
    #: the answer's attention through each view, by name (`analysis.attention_views.VIEWS`)
    views: dict[str, ViewedAttention] = field(default_factory=dict)
    #: the view the page opens on and `looked_at` reads
    default_view: str = "attention"
    #: per step, the positions the default view weighs most (`looked_at`)
    looked_at: list[list[dict]] = field(default_factory=list)
    #: what made each answer token (attributions over the prompt's units); None when not asked
    explanation: AnswerExplanation | None = None

    @property
    def rollout(self) -> np.ndarray | None:
        """The default view's rollout rows ``[T, K]`` (None for a prompt longer than was kept)."""
        view = self.views.get(self.default_view)
        return None if view is None else view.rollout


#: explains one answer from its trace and each attention view's rows per answer token, by
#: ranking name (the caller holds the model)
AnswerExplainer = Callable[[GenerationTrace, dict[str, np.ndarray]], AnswerExplanation | None]


def analyse_generation(trace: GenerationTrace, explain: AnswerExplainer | None = None) -> GenerationAnalysis:
    probability = trace.probability.astype(np.float64)
    empty = trace.steps == 0
    with np.errstate(divide="ignore"):
        log_probability = float(np.log(probability).sum()) if not empty else 0.0
    sinks = find_sinks(trace.attentions, trace.n_prompt)
    views = viewed_attention(trace, sinks)
    shown = default_view(trace.value_norms)
    rankings = {name: rows for view in views.values() for name, rows in view.rankings().items()}
    return GenerationAnalysis(
        trace=trace,
        segments=segment_shares(trace),
        log_probability=log_probability,
        mean_probability=float(probability.mean()) if not empty else float("nan"),
        min_probability=float(probability.min()) if not empty else float("nan"),
        min_step=None if empty else int(np.argmin(probability)),
        sinks=sinks,
        views=views,
        default_view=shown,
        looked_at=looked_at(trace, views[shown], DEFAULT_VIEW[1]) if not empty else [],
        explanation=None if explain is None or empty else explain(trace, rankings),
    )
