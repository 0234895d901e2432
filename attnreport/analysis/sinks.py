"""Attention sinks: the positions that take a large share of attention whatever the query.

Real LLMs park much of their attention on the first token and on template delimiters (Xiao et
al. 2023, "Efficient Streaming Language Models with Attention Sinks"); the value vectors there
are small, so raw weights overstate what those positions contribute (Kobayashi et al. 2020).
A view that leaves them in shows the sink and nothing else, so they are found, named and set
apart.

The rule, per layer: a key position is a sink when it takes at least `SINK_WEIGHT` of the
attention in at least `SINK_MAJORITY` of the (head, query) pairs that can see it. The queries are
the positions that chose the answer's tokens. A token a single step copies from, however
strongly, is looked at by one query, not most of them, so it is no sink; a position that every
head keeps returning to, whatever is being written, is. A position that is a sink in any layer is
set apart in every layer by the views beyond the sink: its share is stated, and a position the
heads park attention on in some layers would otherwise head the ranking in others (measured on
the demo's chat model: a secondary sink on a space token did).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: a sink takes at least this share of a query's attention in one head...
SINK_WEIGHT = 0.3
#: ...in at least this share of the layer's (head, query) pairs that can see it
SINK_MAJORITY = 0.5

#: the rule in words, for the page and report.json
SINK_RULE = (
    f"a position is a sink of a layer when it takes at least {SINK_WEIGHT:.0%} of the attention "
    f"in at least {SINK_MAJORITY:.0%} of the layer's (head, answer token) pairs that can see it"
)


@dataclass
class Sinks:
    """The sinks of one answer's attention rows.

    ``layers[l]``: the sink positions of layer ``l`` (sorted); ``positions``: every position that
    is a sink in some layer (sorted), the ones set apart; ``share [L, T]``: per layer and answer
    step, the head-averaged share of the step's attention on `positions`."""

    layers: list[list[int]]
    share: np.ndarray

    def __post_init__(self) -> None:
        self.share = np.asarray(self.share, dtype=np.float64)
        if self.share.ndim != 2 or self.share.shape[0] != len(self.layers):
            raise ValueError(f"share must be [{len(self.layers)}, T], got {list(self.share.shape)}")

    @property
    def positions(self) -> list[int]:
        return sorted({p for layer in self.layers for p in layer})

    def mask(self, keys: int) -> np.ndarray:
        """``[keys]`` boolean: the keys set apart (`positions`)."""
        out = np.zeros(keys, dtype=bool)
        out[[p for p in self.positions if p < keys]] = True
        return out

    def step_share(self, step: int) -> float:
        """The step's attention on the sink positions, mean of layers and heads."""
        return float(self.share[:, step].mean()) if self.share.size else 0.0


def find_sinks(rows: np.ndarray, n_prompt: int) -> Sinks:
    """`SINK_RULE` on ``rows [L, H, T, K]``: the answer's attention rows (step ``t``'s query sits at
    position ``n_prompt - 1 + t`` and sees keys ``0 .. n_prompt - 1 + t``)."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 4:
        raise ValueError(f"attention rows must be [L, H, T, K], got {list(rows.shape)}")
    layers, heads, steps, keys = rows.shape
    if steps == 0:
        return Sinks(layers=[[] for _ in range(layers)], share=np.zeros((layers, 0)))
    # how many steps see each key: a prompt key every step, answer key n + s the steps after s + 1
    first_seen = np.maximum(np.arange(keys) - (n_prompt - 1), 0)  # [K]
    seen_by = np.maximum(steps - first_seen, 0) * heads  # (head, step) pairs that can see each key
    strong = (rows >= SINK_WEIGHT).sum(axis=(1, 2))  # [L, K]
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(seen_by > 0, strong / np.maximum(seen_by, 1), 0.0)
    found = [np.flatnonzero(fraction[layer] >= SINK_MAJORITY).tolist() for layer in range(layers)]
    sinks = Sinks(layers=found, share=np.zeros((layers, steps)))
    sinks.share = np.einsum("lhtk,k->lt", rows, sinks.mask(keys).astype(np.float64)) / heads
    return sinks
