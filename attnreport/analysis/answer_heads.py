"""The head atlas of a generation report: what each head does while the model writes its answer.

The classifiers' atlas (`analysis.heads`) labels a head by what every query of a text looks at.
A causal LM's report asks a narrower question, the one of the seeds' head-pattern table: while it
wrote its answer, which heads kept to the last few tokens, which went back to the question, which
returned to one early word at step after step, which weighed recent tokens more, and which parked
their attention on the sink. Each is a score per head with a formula and a threshold, measured on
the answer steps' attention rows (``GenerationTrace.attentions [L, H, T, n + T - 1]``: step ``t``'s
query sits at ``q = n - 1 + t`` and sees keys ``j <= q``, at distance ``d = q - j``). A head shows
every pattern whose score reaches its threshold (a head can show several, or none).

Per prompt, with ``S`` its sink positions (`analysis.sinks.find_sinks`, the same rule as the page's
views: a position that is a sink in any layer), ``s_t`` a row's mass on ``S`` and ``r_t = 1 - s_t``
the rest, ``W`` the window (`AnswerHeadThresholds.window`):

- ``sink``: the mean over steps of ``s_t``.
- ``local`` (local window): the share of the attention beyond the sinks that goes to the last
  ``W`` positions, ``0 <= d < W`` (the query itself and the ``W - 1`` before it):
  ``sum_t mass_t(window) / sum_t r_t``. Pooled over the steps, so a step whose attention is nearly
  all on the sink weighs little.
- ``question`` (global focus on question words): the share of the attention beyond the sinks
  that goes to the user's question (the prompt's tokens that are neither the chat template's nor
  special) at distance ``d >= W``: ``sum_t mass_t(question) / sum_t r_t``.
- ``entity`` (repeated reference to an early entity): the largest, over the question's content
  tokens ``e`` (a letter or a digit in it) at ``d >= W``, of the share of the attention beyond the
  sinks that goes to that one token over the answer: ``max_e sum_t a_t[e] / sum_t r_t``. High only
  when the same early token is returned to at step after step: a head that copies a different
  source at each step (an induction head) spreads it over many tokens.
- ``recency`` (position bias towards recent tokens): the mean over steps of Spearman's rank
  correlation between a row's weights and the keys' recency ``-d``, over the keys at ``d >= W``
  that are not sinks (steps with fewer than 3 such keys left out). 1 when the weight keeps falling
  with distance beyond the window; a window alone (``local``) scores 0 here, its keys outside the
  window all tied, so the two patterns are told apart: a window, or a decay over the whole context.
  Over an answer's first steps a question that ends the prompt is the most recent text beyond the
  window, so a head fixed on it correlates with recency there; the answer's own tokens, which it
  leaves at 0, bring that down as the answer grows. In a chat template a long system prompt lies
  far back, so the correlation also rewards a head that reads the question and the answer more
  than the system prompt.

The sink share is the only score of the raw weights: the four patterns of the seed describe the
attention the sink leaves (as the page's views beyond the sink do), so a head can park most of its
attention on the sink and still be local with the rest; its sink score says how much rest there is.
A head's score is the mean over prompts (each prompt weighs the same). The prompt's own attention
(``prompt_attentions``) is not read: every score is about the answer's steps. Each pattern's example
is the prompt and step where the head shows it most (the step's own term of the formula: ``s_t``,
the window's mass, the question's mass, the entity's mass, the correlation).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
from scipy.stats import rankdata

from attnreport.analysis.sinks import SINK_RULE, Sinks, find_sinks
from attnreport.core.errors import ConfigError
from attnreport.core.generation import GenerationTrace
from attnreport.core.tokens import display_tokens

#: the patterns, the sink first, then the seed's four in the seed's order
ANSWER_PATTERNS = ("sink", "local", "question", "entity", "recency")
#: the seed's names of its four patterns -> ours
SEED_NAMES = {
    "local": "local window",
    "question": "global focus on question words",
    "entity": "repeated reference to an early entity",
    "recency": "position bias towards recent tokens",
}
#: the fewest keys beyond the sinks a step's recency correlation is computed on
MIN_RECENCY_KEYS = 3


@dataclass(frozen=True)
class AnswerHeadThresholds:
    """The score each pattern must reach for a head to show it, and the local window's width."""

    #: mean share of a step's attention on the sink positions ("mostly on the sink")
    sink: float = 0.5
    #: share of the attention beyond the sinks on the last `window` positions
    local: float = 0.5
    #: share of the attention beyond the sinks on the question's tokens, outside the window
    question: float = 0.5
    #: share of the attention beyond the sinks on one early content token of the question
    entity: float = 0.3
    #: mean rank correlation of weight with recency
    recency: float = 0.5
    #: the window: the query and the ``window - 1`` positions before it
    window: int = 4

    def __post_init__(self) -> None:
        for name in ANSWER_PATTERNS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"head pattern threshold {name} must be in [0, 1], got {value!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ConfigError(f"the local window must be an integer >= 1, got {self.window!r}")

    def rules(self) -> dict[str, str]:
        """Each pattern's rule in words, with its threshold, for the page and report.json."""
        w = self.window
        return {
            "sink": (
                f"at least {self.sink:.0%} of a step's attention, on average over the answer's steps, "
                f"on the prompt's sink positions ({SINK_RULE})"
            ),
            "local": (
                f"at least {self.local:.0%} of the attention beyond the sinks, summed over the answer's "
                f"steps, on the last {w} positions (the writing position and the {w - 1} before it)"
            ),
            "question": (
                f"at least {self.question:.0%} of the attention beyond the sinks, summed over the "
                f"answer's steps, on the user's question (the prompt's tokens that are neither the chat "
                f"template's nor special) at least {w} positions back"
            ),
            "entity": (
                f"at least {self.entity:.0%} of the attention beyond the sinks, summed over the "
                f"answer's steps, on one and the same content token of the question (a letter or digit "
                f"in it) at least {w} positions back"
            ),
            "recency": (
                f"a rank correlation (Spearman) of at least {self.recency:.2f} between a step's weights "
                f"and the keys' recency, over the keys at least {w} positions back that are not sinks, "
                f"on average over the steps"
            ),
        }

    @classmethod
    def from_dict(cls, options: Mapping[str, object]) -> AnswerHeadThresholds:
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f"unknown head pattern threshold {unknown[0]!r}; known: {', '.join(known)}")
        return cls(**options)


@dataclass
class PatternExample:
    """Where one head shows one pattern most: the prompt, the answer step, its value there, and
    the key that carries it (the sink, the window's or the question's strongest key, the entity;
    None for recency)."""

    id: str
    step: int
    #: the answer token the step wrote
    token: str
    value: float
    position: int | None = None
    key: str | None = None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "step": self.step,
            "token": self.token,
            "value": self.value,
            "position": self.position,
            "key": self.key,
        }


@dataclass
class AnswerHead:
    layer: int
    head: int
    #: one score per pattern of `ANSWER_PATTERNS`
    scores: dict[str, float]
    #: the patterns whose score reaches its threshold, in `ANSWER_PATTERNS` order
    patterns: list[str]
    #: per pattern, where the head shows it most
    examples: dict[str, PatternExample] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "head": self.head,
            "scores": dict(self.scores),
            "patterns": list(self.patterns),
            "examples": {p: e.to_dict() for p, e in self.examples.items()},
        }


@dataclass
class PromptHeadScores:
    """One prompt's scores ``[len(ANSWER_PATTERNS), L, H]`` (NaN where the prompt has nothing to
    score: an empty answer; recency with too few keys) and each step's own term ``[patterns, L, H,
    T]`` with the key that carries it ``[patterns, L, H, T]`` (-1: none), for the examples."""

    scores: np.ndarray
    steps: np.ndarray
    keys: np.ndarray


def prompt_head_scores(
    trace: GenerationTrace,
    sinks: Sinks | None = None,
    *,
    thresholds: AnswerHeadThresholds = AnswerHeadThresholds(),
) -> PromptHeadScores:
    """Every head's scores on one prompt's answer (the module's formulas); `sinks` are the
    prompt's (`find_sinks` on its rows when None)."""
    layers, heads, steps, keys = trace.attentions.shape
    n, w = trace.n_prompt, thresholds.window
    patterns = len(ANSWER_PATTERNS)
    scores = np.full((patterns, layers, heads), np.nan)
    terms = np.full((patterns, layers, heads, steps), np.nan)
    carried = np.full((patterns, layers, heads, steps), -1, dtype=np.int64)
    if steps == 0:
        return PromptHeadScores(scores, terms, carried)
    if sinks is None:
        sinks = find_sinks(trace.attentions, n)
    sink = sinks.mask(keys)
    query = n - 1 + np.arange(steps)
    distance = query[:, None] - np.arange(keys)[None, :]  # [T, K]; negative: not yet written
    visible = distance >= 0
    far = distance >= w
    question = np.zeros(keys, dtype=bool)
    question[:n] = ~np.asarray(trace.from_template, dtype=bool) & ~np.asarray(trace.special, dtype=bool)
    question &= ~sink
    content = question.copy()
    content[:n] &= np.array([any(ch.isalnum() for ch in t) for t in _prompt_texts(trace)], dtype=bool)
    masks = {
        "sink": sink[None, :] & visible,
        "local": visible & (distance < w) & ~sink[None, :],
        "question": far & question[None, :],
        "entity": far & content[None, :],
        "recency": far & ~sink[None, :],
    }
    for layer in range(layers):  # one layer at a time: [H, T, K] in float64 stays small
        rows = trace.attentions[layer].astype(np.float64)
        for i, (score, term, key) in enumerate(_layer_scores(rows, masks)):
            scores[i, layer], terms[i, layer], carried[i, layer] = score, term, key
    r = ANSWER_PATTERNS.index("recency")
    scores[r], terms[r] = _recency(trace.attentions, masks["recency"], distance)
    return PromptHeadScores(scores, terms, carried)


def _layer_scores(rows: np.ndarray, masks: dict[str, np.ndarray]) -> list[tuple]:
    """One layer's ``rows [H, T, K]`` -> per pattern of `ANSWER_PATTERNS` but recency: the heads'
    scores ``[H]``, each step's term ``[H, T]`` and the key that carries it ``[H, T]`` (-1: none);
    `masks` are the ``[T, K]`` keys each pattern reads."""
    heads, steps, _ = rows.shape
    rest = np.clip((rows * ~masks["sink"]).sum(axis=-1), 0.0, None).sum(axis=-1)  # [H]
    none = np.full((heads, steps), -1, dtype=np.int64)

    def mass(mask: np.ndarray) -> np.ndarray:
        return np.einsum("htk,tk->ht", rows, mask.astype(np.float64))

    def strongest(mask: np.ndarray) -> np.ndarray:
        """[H, T]: the key of `mask` with the most weight (-1 where the mask is empty)."""
        top = np.where(mask, rows, -1.0).argmax(axis=-1)
        return np.where(mask.any(axis=-1), top, -1)

    sink = mass(masks["sink"])
    out = [(sink.mean(axis=-1), sink, strongest(masks["sink"]))]
    for name in ("local", "question"):
        on = mass(masks[name])
        out.append((_share(on.sum(axis=-1), rest), on, strongest(masks[name])))

    content = masks["entity"]
    if content.any():
        per_token = (rows * content).sum(axis=1)  # [H, K]: each token's mass over the steps
        entity = per_token.argmax(axis=-1)  # [H]
        score = _share(per_token[np.arange(heads), entity], rest)
        on = np.where(content[:, entity].T, rows[np.arange(heads), :, entity], 0.0)  # [H, T]
        out.append((score, on, np.repeat(entity[:, None], steps, axis=1)))
    else:
        out.append((np.full(heads, np.nan), np.full((heads, steps), np.nan), none))

    return out


def _recency(attentions: np.ndarray, keys: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every head's recency score ``[L, H]`` and each step's correlation ``[L, H, T]`` (NaN where a
    step has fewer than `MIN_RECENCY_KEYS` `keys [T, K]`); ranks read the stored weights as they are."""
    layers, heads, steps, _ = attentions.shape
    correlation = np.full((layers, heads, steps), np.nan)
    for t in range(steps):
        seen = np.flatnonzero(keys[t])
        if len(seen) >= MIN_RECENCY_KEYS:
            correlation[:, :, t] = _spearman(attentions[:, :, t, seen], -distance[t, seen])
    measured = np.isfinite(correlation).any(axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a head with no step measured: NaN
        score = np.where(measured, np.nanmean(correlation, axis=-1), np.nan)
    return score, correlation


class AnswerHeadAtlas:
    """The generation report's atlas, fed one prompt at a time (`add`), so the answers stream by:
    it keeps each prompt's ``[patterns, L, H]`` scores and, per head and pattern, its best example."""

    def __init__(self, thresholds: AnswerHeadThresholds = AnswerHeadThresholds()) -> None:
        self.thresholds = thresholds
        self.per: list[np.ndarray] = []
        self.shape: tuple[int, int] | None = None
        self.best: np.ndarray | None = None  # [patterns, L, H] best step value so far
        self.examples: dict[tuple[int, int, int], PatternExample] = {}

    def __len__(self) -> int:
        return len(self.per)

    def add(self, trace: GenerationTrace, sinks: Sinks | None = None) -> None:
        shape = (trace.layers, trace.heads)
        if self.shape is None:
            self.shape = shape
            self.best = np.full((len(ANSWER_PATTERNS), *shape), -np.inf)
        elif shape != self.shape:
            raise ValueError(
                f"prompt {trace.id!r} has {shape[0]} layers x {shape[1]} heads, the atlas's earlier "
                f"prompts {self.shape[0]} x {self.shape[1]}: one model per atlas"
            )
        result = prompt_head_scores(trace, sinks, thresholds=self.thresholds)
        self.per.append(result.scores)
        if trace.steps == 0:
            return
        keys = [*_prompt_texts(trace), *trace.tokens[:-1]]
        values = np.nan_to_num(result.steps, nan=-np.inf)
        step = values.argmax(axis=-1)  # [patterns, L, H]
        top = np.take_along_axis(values, step[..., None], -1)[..., 0]
        for p, layer, head in zip(*np.nonzero((top > self.best) & (top > 0)), strict=True):
            t = int(step[p, layer, head])
            key = int(result.keys[p, layer, head, t])
            self.best[p, layer, head] = top[p, layer, head]
            self.examples[p, layer, head] = PatternExample(
                id=trace.id,
                step=t,
                token=trace.tokens[t],
                value=float(top[p, layer, head]),
                position=None if key < 0 else key,
                key=None if key < 0 else keys[key],
            )

    def heads(self) -> list[AnswerHead]:
        """Every head, layer by layer, head by head: its scores (the mean over prompts, NaN-free:
        0 where no prompt had anything to score), the patterns it shows, their examples."""
        if not self.per:
            raise ValueError("the head atlas needs at least one prompt")
        per = np.stack(self.per)
        valid = ~np.isnan(per)
        count = valid.sum(axis=0)
        total = np.where(valid, per, 0.0).sum(axis=0)
        means = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        layers, heads = self.shape
        out = []
        for layer in range(layers):
            for head in range(heads):
                scores = {p: float(means[i, layer, head]) for i, p in enumerate(ANSWER_PATTERNS)}
                shown = [p for p in ANSWER_PATTERNS if scores[p] >= getattr(self.thresholds, p)]
                examples = {
                    p: self.examples[i, layer, head]
                    for i, p in enumerate(ANSWER_PATTERNS)
                    if (i, layer, head) in self.examples
                }
                out.append(AnswerHead(layer, head, scores, shown, examples))
        return out


def answer_head_atlas(
    traces: Sequence[GenerationTrace], *, thresholds: AnswerHeadThresholds = AnswerHeadThresholds()
) -> list[AnswerHead]:
    """Score every head on `traces` (each prompt's sinks found by `find_sinks`)."""
    atlas = AnswerHeadAtlas(thresholds)
    for trace in traces:
        atlas.add(trace)
    return atlas.heads()


def pattern_counts(heads: Sequence[AnswerHead], layers: int) -> dict[str, list[int]]:
    """Per pattern, how many heads of each layer show it."""
    counts = {p: [0] * layers for p in ANSWER_PATTERNS}
    for h in heads:
        for p in h.patterns:
            counts[p][h.layer] += 1
    return counts


def _prompt_texts(trace: GenerationTrace) -> list[str]:
    return display_tokens(trace.text, trace.prompt_tokens, trace.prompt_offsets.tolist(), trace.special)


def _share(mass: np.ndarray, rest: np.ndarray) -> np.ndarray:
    return np.divide(mass, rest, out=np.zeros_like(mass), where=rest > 1e-12)


def _spearman(weights: np.ndarray, recency: np.ndarray) -> np.ndarray:
    """``[L, H]``: Spearman's rank correlation of each ``weights [L, H, m]`` with ``recency [m]``
    (average ranks for ties; 0 where the weights all tie)."""
    a = rankdata(weights, axis=-1)
    b = rankdata(recency)
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean()
    spread = np.sqrt((a * a).sum(axis=-1) * (b * b).sum())
    return np.divide((a * b).sum(axis=-1), spread, out=np.zeros(a.shape[:-1]), where=spread > 0)
