"""Attention flowing through the layers while the model wrote its answer, in 3D.

The classifiers' flow scene (`scenes.flow`) over the whole sequence the model read: the prompt's
tokens, then the answer's tokens fed back one by one. Its attention is the causal matrix that
`analysis.generation.full_attention` assembles from the prompt's own rows and the answer's rows
(so only when the trace kept the prompt's attention), the lattice is flat (the trace keeps hidden
states of the answer's positions only, so no layer's principal component spans every token: a
`scenes.flow.Lattice` with no depth), and
the layer-0 markers are sized by the answer's rollout relevance: the mean over its tokens of each
step's rollout row, "what the answer as a whole drew on".
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from attnreport.analysis.attention_views import VIEWS, view_rows
from attnreport.analysis.generation import GenerationAnalysis, full_attention
from attnreport.core.tokens import display_tokens
from attnreport.scenes.flow import Lattice, lattice_scene
from attnreport.scenes.geometry import Scene
from attnreport.scenes.palette import EDGE, hex_to_rgb


def answer_lattice(result: GenerationAnalysis) -> tuple[Lattice, np.ndarray] | None:
    """The sequence the model read as a flat `Lattice` (its tokens as the text they cover, the
    answer's fed back) with its attention read through the page's default view, and the answer's
    rollout relevance over it under that view; None when the prompt's own attention was not kept
    or nothing was written."""
    trace = result.trace
    full = full_attention(trace)
    if full is None or result.rollout is None or trace.steps == 0:
        return None
    full = view_rows(result.default_view, full, sinks=result.sinks, value_norms=trace.value_norms)
    fed_back = trace.steps - 1  # the last answer token is written, never read
    prompt = display_tokens(trace.text, trace.prompt_tokens, trace.prompt_offsets.tolist(), trace.special)
    lattice = Lattice(name=trace.id, tokens=[*prompt, *trace.tokens[:fed_back]], attentions=full)
    relevance = np.asarray(result.rollout, dtype=np.float64).mean(axis=0)
    return lattice, relevance


def answer_flow_scene(result: GenerationAnalysis, *, top_k: int = 3) -> Scene | None:
    """The answer's flow scene (see the module's docstring), None where `answer_lattice` is."""
    made = answer_lattice(result)
    if made is None:
        return None
    lattice, relevance = made
    n = result.trace.n_prompt
    scene = lattice_scene(lattice, rollout_row=relevance, top_k=top_k)
    # the answer's tokens at layer 0 in the edge colour, so the eye tells prompt from answer
    colors = scene.points.colors.copy()
    colors[n : lattice.n_tokens] = hex_to_rgb(EDGE)
    labels = list(scene.points.labels)
    for i in range(n, lattice.n_tokens):
        labels[i] = f"answer token {i - n}: {labels[i]}"
    notes = [
        note
        if not note.startswith("marker size")
        else "marker size at layer 0: rollout relevance to the answer (the mean of its tokens' rollout rows)"
        for note in scene.notes
    ]
    notes.append(
        f"attention read as: {VIEWS[result.default_view].label} ({VIEWS[result.default_view].description})"
    )
    notes.append(
        f"positions 0–{n - 1}: the prompt (orange markers); from {n}: the answer's tokens, read back as "
        "the model wrote them (blue); the last answer token is written, never read"
        if lattice.n_tokens > n
        else f"positions 0–{n - 1}: the prompt; the one answer token is written by the last position"
    )
    return replace(
        scene,
        title=f"Attention flow of the answer: {result.trace.id}",
        points=replace(scene.points, colors=colors, labels=labels),
        notes=notes,
    )
