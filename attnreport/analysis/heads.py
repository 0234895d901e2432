"""The head-pattern atlas: what each attention head mostly looks at, as one label per head.

Over 400 lines because the scores, the thresholds that label them and the streamed atlas
are one concept: the vocabulary of head patterns and how each is measured.

Every score is a number in [0, 1] computed from a head's attention rows on a set of traces.
The attention *mass* a query ``i`` puts on a set of keys is the sum of its row over them;
a mass score is the mean of that mass over the scored queries of a text, then the mean over
texts (each text weighs the same; texts with no scored query are left out).

Scored queries are the content tokens (``~trace.special``) at positions ``i >= 1``. Special
tokens ([CLS], [SEP], BOS) are left out as queries because their rows follow rules of their
own; position 0 is left out because, as a query, its self and first-token mass are the same
number (and in a causal model its row is always ``[1]``). Keys are every token.

- ``previous_token``: mass on key ``i - 1``.
- ``next_token``: mass on key ``i + 1`` (queries at the last position are left out; always 0
  for a causal model, which cannot see it).
- ``self``: mass on key ``i``.
- ``first_token``: mass on key 0 ([CLS], BOS, or the first word: the "attention sink").
- ``separator``: mass on the special tokens after position 0 ([SEP], ``</s>``); 0 for models
  with no such token. Punctuation does not count.
- ``local``: the mass on keys with ``|i - j| <= local_window`` *minus* the mass on the one
  strongest of the adjacent keys ``i - 1``, ``i``, ``i + 1`` (per query). A head fixed on one
  adjacent key scores 0 here and takes that key's label; a head spread over its neighbourhood
  scores high. On texts not much longer than ``2 * local_window + 1`` a local head cannot be
  told from a global one.
- ``global``: the *spread* of the row, ``exp(H_i) / m_i``: its effective number of keys
  (the exponential of its entropy ``H_i = -sum_j a_ij log a_ij``) as a fraction of the ``m_i``
  keys query ``i`` can see (``n`` for an encoder, ``i + 1`` for a causal model, the keys of its
  window for a text run in windows). 1 for uniform attention, 0.5 for uniform attention over
  half the keys, ``1 / m_i`` for one key. It is not the normalised entropy ``H_i / log m_i``
  (reported as `HeadScores.entropy`) because that one is high for heads that are not spread
  at all: 62% on the previous token and the rest spread evenly over 20 tokens has normalised
  entropy 0.59 but a spread of 0.30, so the previous-token mass wins clearly.
- ``induction`` (Olsson et al. 2022, "In-context Learning and Induction Heads"): the mass on
  the token right after an earlier occurrence of the query's own token, ``j + 1`` for every
  ``j <= i - 3`` with ``token[j] == token[i]`` (so the key is never ``i`` or ``i - 1``: a self
  or previous-token head does not count). Queries whose token did not occur before are left
  out, and the score is 0 unless at least ``induction_min_queries`` queries qualify over all
  texts. Causal models only: for an encoder it is 0. The clean measurement is the probe of
  Olsson et al.: `repeated_random_tokens` makes a random sequence repeated twice, and
  `induction_scores` reads the mass each query of the second copy puts on ``i - period + 1``;
  pass that ``[L, H]`` array to `head_scores` as ``induction=`` to use it instead.

A head's label is the pattern with the highest score (ties go to the earlier one in
`PATTERNS`), when that score reaches its threshold (`HeadThresholds`) *and* beats every other
score by at least ``margin``; otherwise it is ``mixed``. All scores share one scale, so the
spread can be a mass pattern's runner-up.

How the labels map onto the families of head patterns in the literature (`SEED_TABLE`):
"local window" -> local, previous_token, self, next_token (self is a window of width 0);
"global focus" -> global, first_token, separator; "repeated reference / coreference" ->
induction; "position bias" -> first_token, previous_token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from attnreport.core.errors import ConfigError
from attnreport.core.trace import Trace

PATTERNS = (
    "previous_token",
    "next_token",
    "self",
    "first_token",
    "separator",
    "local",
    "global",
    "induction",
    "mixed",
)
#: the patterns that get a score: all but "mixed"
SCORED = PATTERNS[:-1]
#: families of head patterns as the literature names them -> our labels
SEED_TABLE = {
    "local window": ("local", "previous_token", "self", "next_token"),
    "global focus": ("global", "first_token", "separator"),
    "repeated reference / coreference": ("induction",),
    "position bias": ("first_token", "previous_token"),
}


@dataclass(frozen=True)
class HeadThresholds:
    """When a head gets a label. Set from ``[analysis] head_thresholds`` by field name."""

    #: a mass pattern (previous_token, next_token, self, first_token, separator, local) needs this mean mass
    min_score: float = 0.5
    #: "global" needs this mean spread (effective fraction of the visible keys attended)
    min_spread: float = 0.5
    #: "induction" needs this mean mass on the induction key (Olsson et al.'s heads sit well above)
    min_induction: float = 0.4
    #: the label's score must beat the runner-up's by this much, else "mixed"
    margin: float = 0.1
    #: "local" counts the keys with |i - j| <= local_window
    local_window: int = 3
    #: induction measured on the texts themselves needs this many queries with an earlier occurrence
    induction_min_queries: int = 8
    #: how many typical examples to list per head
    typical: int = 5

    def __post_init__(self) -> None:
        for name in ("min_score", "min_spread", "min_induction", "margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"head threshold {name} must be in [0, 1], got {value!r}")
        for name, low in (("local_window", 1), ("induction_min_queries", 1), ("typical", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ConfigError(f"head threshold {name} must be an integer >= {low}, got {value!r}")

    @classmethod
    def from_dict(cls, options: Mapping[str, object]) -> HeadThresholds:
        """Thresholds from a config table; an unknown name lists the known ones."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(
                f"[analysis] head_thresholds has unknown option {unknown[0]!r}; known: {', '.join(known)}"
            )
        return cls(**options)

    def threshold(self, pattern: str) -> float:
        """The score `pattern` must reach to be a head's label."""
        if pattern == "global":
            return self.min_spread
        if pattern == "induction":
            return self.min_induction
        if pattern in SCORED:
            return self.min_score
        raise ValueError(f"unknown head pattern {pattern!r}; known: {', '.join(SCORED)}")


@dataclass
class HeadScores:
    layer: int
    head: int
    #: one score in [0, 1] per pattern of `SCORED`
    scores: dict[str, float]
    #: the label, one of `PATTERNS`
    pattern: str
    #: mean normalised attention entropy ``H_i / log m_i`` over the scored queries, in [0, 1]
    entropy: float
    #: mean |i - j| weighted by attention, in tokens, over the scored queries
    mean_distance: float
    #: indices into the traces of the examples with the highest score for the label (for
    #: "mixed": for the highest-scoring pattern), best first
    typical: list[int]

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "head": self.head,
            "scores": dict(self.scores),
            "pattern": self.pattern,
            "entropy": self.entropy,
            "mean_distance": self.mean_distance,
            "typical": list(self.typical),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> HeadScores:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def head_scores(
    traces: Sequence[Trace],
    *,
    thresholds: HeadThresholds = HeadThresholds(),
    causal: bool = False,
    induction: np.ndarray | None = None,
) -> list[HeadScores]:
    """Score and label every head on `traces`: ``L * H`` entries, layer by layer, head by head.

    ``induction`` optionally gives ``[L, H]`` induction scores from the repeated-random-token
    probe (`induction_scores`), which then replace the estimate from the texts themselves.
    """
    traces = list(traces)
    if not traces:
        raise ValueError("head_scores needs at least one trace")
    atlas = HeadAtlas(traces[0].layers, traces[0].heads, causal=causal, window=thresholds.local_window)
    for trace in traces:
        atlas.add(trace)
    return atlas.scores(thresholds, induction=induction)


class HeadAtlas:
    """The atlas's sums, fed one trace at a time, so a dataset of any size streams through.

    Per example it keeps only the ``[patterns, L, H]`` scores and ``[2, L, H]`` entropy and
    distance (float32, about 2.6 KB for 6 x 12 heads): the means need the NaN-aware counts and
    the most typical examples need every example's score on the head's winning pattern, which
    is known only at the end.
    """

    def __init__(self, layers: int, heads: int, *, causal: bool = False, window: int = 3) -> None:
        self.layers, self.heads = layers, heads
        self.causal, self.window = causal, window
        self.per: list[np.ndarray] = []
        self.extra: list[np.ndarray] = []
        self.induction_queries = 0
        self.first_id: str | None = None
        self.first_shape: list[int] = []

    def __len__(self) -> int:
        return len(self.per)

    def add(self, trace: Trace) -> None:
        if (trace.layers, trace.heads) != (self.layers, self.heads):
            raise ValueError(
                f"trace {trace.id!r} has attentions {list(trace.attentions.shape)}, but trace "
                f"{self.first_id!r} has {self.first_shape}: every trace needs "
                f"[{self.layers}, {self.heads}, n, n]"
            )
        if self.first_id is None:
            self.first_id, self.first_shape = trace.id, list(trace.attentions.shape)
        per, extra, count = _example_scores(trace, causal=self.causal, window=self.window)
        self.per.append(per.astype(np.float32))
        self.extra.append(extra.astype(np.float32))
        self.induction_queries += count

    def scores(
        self, thresholds: HeadThresholds = HeadThresholds(), *, induction: np.ndarray | None = None
    ) -> list[HeadScores]:
        """Every head's scores and label, ``L * H`` entries, layer by layer, head by head;
        `HeadScores.typical` indexes the traces in the order they were added."""
        layers, heads = self.layers, self.heads
        if not self.per:
            raise ValueError("the head atlas needs at least one trace")
        if induction is not None:
            induction = np.asarray(induction, dtype=np.float64)
            if induction.shape != (layers, heads):
                raise ValueError(f"induction must be [{layers}, {heads}], got {list(induction.shape)}")
        per = np.stack(self.per).astype(np.float64)
        means = _nanmean(per)
        entropy, distance = _nanmean(np.stack(self.extra).astype(np.float64))
        k = SCORED.index("induction")
        if induction is not None:
            means[k] = np.clip(induction, 0.0, 1.0)
        elif not self.causal or self.induction_queries < thresholds.induction_min_queries:
            means[k] = 0.0

        out = []
        for layer in range(layers):
            for head in range(heads):
                scores = {p: float(means[s, layer, head]) for s, p in enumerate(SCORED)}
                pattern = choose_label(scores, thresholds)
                best = pattern if pattern != "mixed" else _ranked(scores)[0]
                out.append(
                    HeadScores(
                        layer=layer,
                        head=head,
                        scores=scores,
                        pattern=pattern,
                        entropy=float(entropy[layer, head]),
                        mean_distance=float(distance[layer, head]),
                        typical=_typical(per[:, SCORED.index(best), layer, head], thresholds.typical),
                    )
                )
        return out


def choose_label(scores: Mapping[str, float], thresholds: HeadThresholds = HeadThresholds()) -> str:
    """The label rule: the top pattern if it reaches its threshold and beats the runner-up by ``margin``."""
    missing = [p for p in SCORED if p not in scores]
    if missing:
        raise ValueError(f"scores lack {', '.join(missing)}; need one per pattern of {', '.join(SCORED)}")
    best, second = _ranked(scores)[:2]
    top = scores[best]
    if top >= thresholds.threshold(best) and top - scores[second] >= thresholds.margin:
        return best
    return "mixed"


def induction_scores(attentions: np.ndarray, period: int, start: int) -> np.ndarray:
    """Olsson et al.'s induction score of every head on the repeated-random-token probe.

    ``attentions [L, H, n, n]`` are the attentions of a sequence whose tokens
    ``start .. start + period - 1`` are random and repeated at ``start + period ..
    start + 2 * period - 1`` (see `repeated_random_tokens`; ``start`` counts tokens before the
    probe, such as BOS). Returns ``[L, H]``: the mean over the queries ``i`` of the second copy
    of the mass on key ``i - period + 1``, the token after the previous occurrence of token ``i``.
    """
    a = np.asarray(attentions, dtype=np.float64)
    if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"attentions must be [L, H, n, n], got {list(a.shape)}")
    n = a.shape[-1]
    if period < 3:
        raise ValueError(f"period must be at least 3 (shorter puts the induction key on i - 1), got {period}")
    if start < 0 or start + 2 * period > n:
        raise ValueError(
            f"a probe of 2 x {period} tokens from position {start} needs n >= {start + 2 * period}, "
            f"got attentions {list(a.shape)}"
        )
    # element m of this diagonal is A[m + period - 1, m]: query i = m + period - 1, key i - period + 1
    diagonal = np.diagonal(a, offset=-(period - 1), axis1=2, axis2=3)
    queries = np.arange(start + period, start + 2 * period)
    return diagonal[..., queries - (period - 1)].mean(axis=-1)


def repeated_random_tokens(
    vocab_size: int,
    length: int,
    *,
    random_state: int | np.random.Generator | None = 0,
    exclude: Sequence[int] = (),
) -> np.ndarray:
    """Token ids for the induction probe: ``length`` distinct random ids, then the same again.

    Ids in ``exclude`` (special tokens, padding) are never drawn. The ids of one copy are
    distinct, so each query of the second copy has exactly one earlier occurrence. Returns
    ``[2 * length]`` int64; add any special tokens around it yourself.
    """
    rng = np.random.default_rng(random_state)
    allowed = np.setdiff1d(np.arange(vocab_size), np.asarray(list(exclude), dtype=np.int64))
    if not 1 <= length <= allowed.size:
        raise ValueError(
            f"length must be in [1, {allowed.size}] (distinct ids of a {vocab_size}-token vocabulary "
            f"without {len(exclude)} excluded), got {length}"
        )
    sequence = rng.choice(allowed, size=length, replace=False)
    return np.concatenate([sequence, sequence]).astype(np.int64)


def _example_scores(trace: Trace, *, causal: bool, window: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One text -> (scores ``[len(SCORED), L, H]``, ``[entropy, distance]`` as ``[2, L, H]``,
    the number of queries with an induction key). NaN where no query of the text qualifies.
    """
    n, layers, heads = trace.n_tokens, trace.layers, trace.heads
    scores = np.full((len(SCORED), layers, heads), np.nan)
    extra = np.full((2, layers, heads), np.nan)
    pos = np.arange(n)
    queries = ~trace.special & (pos >= 1)
    if not queries.any():
        return scores, extra, 0
    offsets = np.abs(pos[:, None] - pos[None, :])
    near = (offsets <= window).astype(np.float64)
    visible = _visible(trace, causal)
    keys = np.maximum(visible.sum(axis=-1), 2)
    separators = trace.special & (pos >= 1)
    masks = {p: queries for p in SCORED}
    masks["next_token"] = queries & (pos < n - 1)
    induction_keys = np.zeros((n, n), dtype=bool)
    if causal:
        tokens = np.asarray(trace.tokens)
        earlier = (tokens[:, None] == tokens[None, :]) & (pos[None, :] <= pos[:, None] - 3)
        induction_keys[:, 1:] = earlier[:, :-1]  # key j + 1 for every earlier occurrence j
    masks["induction"] = queries & induction_keys.any(axis=-1)

    rows = {p: np.zeros((layers, heads, n)) for p in SCORED}
    entropy = np.zeros((layers, heads, n))
    distance = np.zeros((layers, heads, n))
    for layer in range(layers):  # one layer at a time: [H, n, n] in float64 stays small
        a = trace.attentions[layer].astype(np.float64)
        own = np.diagonal(a, axis1=1, axis2=2)
        prev = np.zeros_like(own)
        prev[:, 1:] = np.diagonal(a, offset=-1, axis1=1, axis2=2)
        nxt = np.zeros_like(own)
        nxt[:, :-1] = np.diagonal(a, offset=1, axis1=1, axis2=2)
        rows["previous_token"][layer] = prev
        rows["next_token"][layer] = nxt
        rows["self"][layer] = own
        rows["first_token"][layer] = a[:, :, 0]
        rows["separator"][layer] = a[:, :, separators].sum(axis=-1)
        strongest = np.maximum(np.maximum(prev, own), nxt)
        rows["local"][layer] = np.einsum("hij,ij->hi", a, near) - strongest
        h = -(a * np.log(np.where(a > 0, a, 1.0))).sum(axis=-1)
        rows["global"][layer] = np.exp(h) / keys
        entropy[layer] = h / np.log(keys)
        rows["induction"][layer] = np.einsum("hij,ij->hi", a, induction_keys.astype(np.float64))
        distance[layer] = np.einsum("hij,ij->hi", a, offsets.astype(np.float64))

    for s, p in enumerate(SCORED):
        if masks[p].any():
            scores[s] = np.clip(rows[p][..., masks[p]].mean(axis=-1), 0.0, 1.0)
    extra[0] = np.clip(entropy[..., queries].mean(axis=-1), 0.0, 1.0)
    extra[1] = distance[..., queries].mean(axis=-1)
    return scores, extra, int(masks["induction"].sum())


def _visible(trace: Trace, causal: bool) -> np.ndarray:
    """``[n, n]``: the keys each query could see."""
    n = trace.n_tokens
    if trace.windows:
        # keys outside a query's window have weight exactly 0 in every head; inside, softmax
        # leaves every key some weight in some head
        return (trace.attentions > 0).any(axis=(0, 1))
    if causal:
        return np.tril(np.ones((n, n), dtype=bool))
    return np.ones((n, n), dtype=bool)


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over the first axis, leaving NaN out; 0 where every value is NaN."""
    valid = ~np.isnan(values)
    count = valid.sum(axis=0)
    total = np.where(valid, values, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def _ranked(scores: Mapping[str, float]) -> list[str]:
    """Scored patterns from the highest score down; ties keep the order of `PATTERNS`."""
    return sorted(SCORED, key=lambda p: -scores[p])


def _typical(values: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` highest of ``values`` (one per example), NaN left out."""
    order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")
    return [int(i) for i in order if not np.isnan(values[i])][:k]
