"""Step scores and the logit lens: what a distribution over the vocabulary says about one token.

`step_scores` reads the model's own distribution at a step (the chosen token's probability and
rank, the entropy, the top-k alternatives). `LogitLens` reads the same at every layer, by
applying the final norm and unembedding (``lm_head.onnx``) to the hidden states of layers
``0 .. L - 1``; layer ``L`` is the model's logits themselves, so the lens at the last layer is
the model's answer exactly, whether or not the model's last hidden state is already normed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnreport.trace.sessions import open_session


@dataclass
class Scores:
    """Per row of a ``[m, V]`` logits block: the chosen token's probability and rank (0: the most
    likely; ties count in its favour), the entropy in nats, and the top ``k`` (most likely first,
    ties by id)."""

    probability: np.ndarray
    rank: np.ndarray
    entropy: np.ndarray
    top_ids: np.ndarray
    top_probabilities: np.ndarray


#: rows x vocabulary scored at once (float64 temporaries of ~32 MB each)
BLOCK = 1 << 22


def step_scores(logits: np.ndarray, chosen: np.ndarray, k: int) -> Scores:
    """`Scores` of ``logits [m, V]`` for the tokens ``chosen [m]``, computed in float64, in blocks
    of rows so that memory stays bounded for a large vocabulary."""
    chosen = np.asarray(chosen, dtype=np.int64).reshape(-1)
    rows = max(1, BLOCK // max(1, logits.shape[1]))
    if len(chosen) > rows:
        parts = [
            step_scores(logits[a : a + rows], chosen[a : a + rows], k) for a in range(0, len(chosen), rows)
        ]
        return Scores(*(np.concatenate([getattr(q, f) for q in parts]) for f in Scores.__dataclass_fields__))
    logits = np.asarray(logits, dtype=np.float64)
    m, vocab = logits.shape
    k = min(k, vocab)
    top = logits.max(axis=1, keepdims=True)
    logp = logits - (top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))
    p = np.exp(logp)
    rows = np.arange(m)
    own = logits[rows, chosen]
    part = np.argpartition(-logits, k - 1, axis=1)[:, :k] if k < vocab else np.tile(np.arange(vocab), (m, 1))
    order = np.lexsort((part, -np.take_along_axis(logits, part, axis=1)), axis=1)
    top_ids = np.take_along_axis(part, order, axis=1)
    return Scores(
        probability=p[rows, chosen].astype(np.float32),
        rank=(logits > own[:, None]).sum(axis=1).astype(np.int64),
        entropy=(-(p * logp).sum(axis=1)).astype(np.float32),
        top_ids=top_ids.astype(np.int64),
        top_probabilities=np.take_along_axis(p, top_ids, axis=1).astype(np.float32),
    )


class LogitLens:
    """``lm_head.onnx`` (final norm + unembedding) over hidden states ``[m, d] -> [m, V]``."""

    def __init__(self, folder: Path, name: str, *, providers: list[str], threads: int | None = None) -> None:
        self.session = open_session(folder, name, providers=providers, threads=threads)
        self.dtype = np.float16 if "float16" in self.session.get_inputs()[0].type else np.float32

    def logits(self, hidden: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(None, {"hidden": np.ascontiguousarray(hidden, dtype=self.dtype)})
        return out.astype(np.float32)

    def read(self, hidden: np.ndarray, logits: np.ndarray, chosen: np.ndarray, k: int) -> Scores:
        """The lens at every layer for ``T`` positions: ``hidden [L + 1, T, d]`` (the last layer's
        unused: `logits [T, V]` are the model's own), ``chosen [T]``; `Scores` fields ``[L + 1, T]``
        (and ``[L + 1, T, k]``)."""
        layers, steps = hidden.shape[0] - 1, hidden.shape[1]
        lens = self.logits(hidden[:layers].reshape(layers * steps, -1)).reshape(layers, steps, -1)
        stacked = np.concatenate([lens, np.asarray(logits, np.float32)[None]], axis=0)
        scores = step_scores(stacked.reshape((layers + 1) * steps, -1), np.tile(chosen, layers + 1), k)
        return Scores(
            probability=scores.probability.reshape(layers + 1, steps),
            rank=scores.rank.reshape(layers + 1, steps),
            entropy=scores.entropy.reshape(layers + 1, steps),
            top_ids=scores.top_ids.reshape(layers + 1, steps, -1),
            top_probabilities=scores.top_probabilities.reshape(layers + 1, steps, -1),
        )
