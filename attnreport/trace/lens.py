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


#: rows x vocabulary scored at once: float32 temporaries of 2 MB, which stay in the cache and are
#: reused by the allocator (large blocks cost more in fresh pages than in arithmetic)
BLOCK = 1 << 19
#: hidden states per lm_head.onnx run of `LogitLens.read` (its logits: 48 MB for a 49,152 vocabulary)
ROWS = 256
#: `top_k` first bounds the k-th largest logit by the maxima of chunks of this many logits
CHUNK = 1024


def step_scores(logits: np.ndarray, chosen: np.ndarray, k: int) -> Scores:
    """`Scores` of ``logits [m, V]`` for the tokens ``chosen [m]``, in blocks of rows so that memory
    stays bounded for a large vocabulary.

    Computed in float32, the logits' own precision: the ids, ranks and top-k come from comparisons
    of the logits themselves, so they are exact; the probabilities are within a few float32 ulps of
    a float64 softmax (tests/test_lens.py), and the entropy within 1e-5 relative, since the best
    token's term is kept apart (``log z = log1p(z - 1)``, a sum of non-negative terms).
    """
    chosen = np.asarray(chosen, dtype=np.int64).reshape(-1)
    rows = max(1, BLOCK // max(1, logits.shape[1]))
    if len(chosen) > rows:
        parts = [
            step_scores(logits[a : a + rows], chosen[a : a + rows], k) for a in range(0, len(chosen), rows)
        ]
        return Scores(*(np.concatenate([getattr(q, f) for q in parts]) for f in Scores.__dataclass_fields__))
    logits = np.asarray(logits, dtype=np.float32)
    m, vocab = logits.shape
    k = min(k, vocab)
    rows = np.arange(m)
    best = logits.argmax(axis=1)
    shifted = logits - logits[rows, best][:, None]  # <= 0, and 0 at the best token
    e = np.exp(shifted)
    e[rows, best] = 0.0
    rest = e.sum(axis=1)  # z - 1, without rounding it against the best token's 1
    e[rows, best] = 1.0
    z = 1.0 + rest
    log_z = np.log1p(rest)
    # -sum p log p = sum p (log z - shifted): non-negative terms, no cancellation for a sure step
    # (a pairwise sum per row, so a row scores the same in any block)
    terms = np.subtract(log_z[:, None], shifted, out=shifted)
    terms *= e
    entropy = terms.sum(axis=1) / z
    top_ids = top_k(logits, k)
    return Scores(
        probability=(e[rows, chosen] / z).astype(np.float32),
        rank=np.count_nonzero(logits > logits[rows, chosen][:, None], axis=1).astype(np.int64),
        entropy=entropy.astype(np.float32),
        top_ids=top_ids,
        top_probabilities=(np.take_along_axis(e, top_ids, axis=1) / z[:, None]).astype(np.float32),
    )


def top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """The ids of each row's `k` largest logits ``[m, k]``, largest first, ties by the smaller id
    (also where a tie straddles the k-th place).

    Without a partition of the whole row: the k-th largest of the maxima of `CHUNK`-logit chunks is
    at most the row's k-th largest logit, so only the few logits at or above it are sorted.
    """
    m, vocab = logits.shape
    chunks = vocab // CHUNK
    if chunks >= k:
        maxima = logits[:, : chunks * CHUNK].reshape(m, chunks, CHUNK).max(axis=2)
        floor = np.partition(maxima, chunks - k, axis=1)[:, chunks - k]
    else:
        floor = np.partition(logits, vocab - k, axis=1)[:, vocab - k]
    r, c = np.nonzero(logits >= floor[:, None])  # at least k per row
    order = np.lexsort((c, -logits[r, c], r))
    first = np.searchsorted(r[order], np.arange(m))
    return c[order][first[:, None] + np.arange(k)].astype(np.int64)


class LogitLens:
    """``lm_head.onnx`` (final norm + unembedding) over hidden states ``[m, d] -> [m, V]``."""

    def __init__(
        self,
        folder: Path,
        name: str,
        *,
        providers: list[str],
        threads: int | None = None,
        spin: bool = True,
    ) -> None:
        self.session = open_session(folder, name, providers=providers, threads=threads, spin=spin)
        self.dtype = np.float16 if "float16" in self.session.get_inputs()[0].type else np.float32

    def logits(self, hidden: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(None, {"hidden": np.ascontiguousarray(hidden, dtype=self.dtype)})
        return np.asarray(out, dtype=np.float32)

    def read(self, hidden: np.ndarray, chosen: np.ndarray, k: int) -> Scores:
        """The lens at layers ``0 .. L - 1`` for ``T`` steps: ``hidden [L, T, d]``, ``chosen [T]``;
        `Scores` fields ``[L, T]`` (and ``[L, T, k]``). (Layer ``L`` is the model's own scores.)

        Read once an answer is done, `ROWS` hidden states per ``lm_head.onnx`` run: its
        ``[d, V]`` unembedding is streamed from memory once per run, so reading every step at once
        costs a fraction of reading each step as it is decoded.
        """
        layers, steps = hidden.shape[:2]
        chosen = np.asarray(chosen, dtype=np.int64)
        block = max(1, ROWS // max(1, layers))
        parts = []
        for a in range(0, steps, block):
            h = hidden[:, a : a + block]
            b = h.shape[1]
            scores = step_scores(
                self.logits(h.reshape(layers * b, -1)), np.tile(chosen[a : a + b], layers), k
            )
            parts.append(
                Scores(
                    *(
                        getattr(scores, f).reshape(layers, b, *getattr(scores, f).shape[1:])
                        for f in Scores.__dataclass_fields__
                    )
                )
            )
        return Scores(
            *(np.concatenate([getattr(q, f) for q in parts], axis=1) for f in Scores.__dataclass_fields__)
        )
