"""Attribution units: the pieces of a text an attribution scores (tokens, words, sentences, lines).

A long text scored token by token needs too many model runs and gives a reader thousands of
tiny numbers; scored by words or sentences it needs few runs, and the numbers name something a
reader recognises. A unit is a set of tokens: masking the unit masks all of them, so every
attribution and faithfulness measure that plays a game over tokens plays the same game over
units unchanged.

This module knows nothing about models: it needs the text, each token's character span and
which tokens are special (classification traces and generation prompts alike). Segmentation
is by characters first, then tokens are placed into the segments:

- ``word``: whitespace-delimited words (punctuation stays with its word, "charged," is one);
  Chinese and Japanese script has no spaces and no segmenter here knows its words, so every
  Han or kana character is a word of its own, and CJK punctuation joins the character before;
- ``sentence``: ends after ``. ! ? …`` followed by a space and not by a lowercase letter
  ("e.g. this" stays one sentence), after ``。 ！ ？`` (no space needed), and at line breaks;
- ``line``: ends at line breaks.

Whitespace belongs to the segment before it. A token whose characters fall into several
segments (a byte-level token covering two Han characters, a word piece across a hyphenated
join) merges them into one unit, so a unit is always a whole number of tokens; segments no
token covers (characters the tokenizer dropped) are no unit. A whitespace-only token goes to
the segment its whitespace belongs to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: `[analysis] attribution_unit` values; "auto" picks by length (`attribution_units`)
UNIT_KINDS = ("auto", "token", "word", "sentence", "line")

#: "auto" scores words up to this many words, sentences beyond: about the number of players
#: for which sampled Shapley values at a few runs per player still separate the strongest
AUTO_MAX_WORDS = 64

_LINE_BREAK = re.compile(r"\r\n|[\n\r\u2028\u2029\x0b\x0c\x85]")
_LATIN_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019\u00bb)\]]*(?=\s)")
_CJK_END = re.compile(r"[\u3002\uff01\uff1f\uff0e]+[\u300d\u300f\uff09\u201d\u2019]*")


def _is_cjk_letter(ch: str) -> bool:
    """Han ideographs, hiragana and katakana: scripts written without spaces between words."""
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0x20000 <= o <= 0x2FFFF
        or 0xF900 <= o <= 0xFAFF
        or 0x3040 <= o <= 0x30FF
    )


def _next_visible(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def word_starts(text: str) -> list[int]:
    """Where each word begins: after whitespace, and at every Han or kana character."""
    starts = []
    for i, ch in enumerate(text):
        if ch.isspace():
            continue
        prev = text[i - 1] if i else " "
        if prev.isspace() or _is_cjk_letter(ch) or (_is_cjk_letter(prev) and ch.isalnum()):
            starts.append(i)
    return starts


def line_starts(text: str) -> list[int]:
    """Where each line begins: the first visible character after a line break."""
    return [_next_visible(text, m.end()) for m in _LINE_BREAK.finditer(text)]


def sentence_starts(text: str) -> list[int]:
    """Where each sentence begins (the rules are in the module docstring)."""
    starts = line_starts(text)
    for m in _LATIN_END.finditer(text):
        j = _next_visible(text, m.end())
        if j < len(text) and not text[j].islower():
            starts.append(j)
    starts += [_next_visible(text, m.end()) for m in _CJK_END.finditer(text)]
    return starts


#: the character segmenters by unit name: text -> where segments begin (any order, repeats fine)
SEGMENTERS: dict[str, Callable[[str], list[int]]] = {
    "word": word_starts,
    "sentence": sentence_starts,
    "line": line_starts,
}


@dataclass(frozen=True)
class Units:
    """A text's attribution units, in text order.

    ``spans [k, 2]`` are character spans (``text[start:stop]`` is the unit, without the
    whitespace around it); ``members[u]`` are the positions, in the full token sequence
    special tokens included, of the tokens unit ``u`` covers. Every non-special token is in
    exactly one unit.
    """

    kind: str
    spans: np.ndarray
    members: tuple[np.ndarray, ...]
    n_tokens: int

    def __post_init__(self) -> None:
        if self.spans.shape != (len(self.members), 2):
            raise ValueError(f"spans must be [{len(self.members)}, 2], got {list(self.spans.shape)}")

    def __len__(self) -> int:
        return len(self.members)

    @property
    def of_token(self) -> np.ndarray:
        """The unit of each token position, -1 for special tokens."""
        unit = np.full(self.n_tokens, -1, dtype=np.int64)
        for u, positions in enumerate(self.members):
            unit[positions] = u
        return unit

    def token_masks(self, unit_masks: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Unit coalitions ``[m, k]`` as coalitions ``[m, len(positions)]`` of the tokens at
        `positions` (the content tokens a masked model plays with): a token is present iff its
        unit is."""
        unit_masks = np.asarray(unit_masks, dtype=bool)
        if unit_masks.ndim != 2 or unit_masks.shape[1] != len(self):
            raise ValueError(f"unit masks must be [m, {len(self)}], got {list(unit_masks.shape)}")
        unit = self.of_token[positions]
        if (unit < 0).any():
            raise ValueError("a position given is a special token, which belongs to no unit")
        return unit_masks[:, unit]

    def reduce(self, per_token: np.ndarray) -> np.ndarray:
        """Per-token scores (``[n_tokens]``) summed over each unit's tokens: a ranking of units
        by the attention mass (rollout, flow) that lands on them."""
        per_token = np.asarray(per_token, dtype=np.float64)
        if per_token.shape != (self.n_tokens,):
            raise ValueError(f"per-token values must be [{self.n_tokens}], got {list(per_token.shape)}")
        return np.array([per_token[m].sum() for m in self.members])

    def to_list(self, text: str) -> list[dict]:
        """The units as report.json states them: ``{"start", "stop", "text"}`` each."""
        return [{"start": int(a), "stop": int(b), "text": text[a:b]} for a, b in self.spans.tolist()]


def _anchor(text: str, a: int, b: int) -> np.ndarray:
    """The characters that place a token: its visible ones, else its whitespace, else (an empty
    span) the character it sits at."""
    a, b = min(max(a, 0), len(text)), min(max(b, 0), len(text))
    chars = [i for i in range(a, b) if not text[i].isspace()] or list(range(a, b))
    return np.array(chars or [min(a, len(text) - 1)], dtype=np.int64)


def _trimmed(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def token_units(offsets: np.ndarray, special: np.ndarray) -> Units:
    """Every content token a unit of its own (byte-level tokens of one character may share a span)."""
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    positions = np.flatnonzero(~np.asarray(special, dtype=bool))
    return Units(
        kind="token",
        spans=offsets[positions].reshape(-1, 2),
        members=tuple(np.array([p]) for p in positions),
        n_tokens=len(offsets),
    )


def segment(text: str, offsets: np.ndarray, special: np.ndarray, kind: str) -> Units:
    """The units of `kind` ("token", "word", "sentence" or "line") of a tokenised text."""
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    special = np.asarray(special, dtype=bool)
    if kind == "token":
        return token_units(offsets, special)
    if kind not in SEGMENTERS:
        known = ", ".join(k for k in UNIT_KINDS if k != "auto")
        raise ValueError(f"attribution unit {kind!r} is unknown; choose one of {known}")
    positions = np.flatnonzero(~special)
    if not len(text) or not len(positions):
        return Units(kind=kind, spans=np.zeros((0, 2), np.int64), members=(), n_tokens=len(offsets))
    bounds = np.array(sorted({0, *SEGMENTERS[kind](text)} - {len(text)}), dtype=np.int64)
    segment_of = np.searchsorted(bounds, np.arange(len(text)), side="right") - 1
    # a token in several segments joins them (and every segment between: spans are contiguous)
    joined = np.zeros(len(bounds), dtype=bool)  # joined[s]: segment s continues segment s - 1
    first_segment = np.empty(len(positions), dtype=np.int64)
    for j, p in enumerate(positions):
        segs = segment_of[_anchor(text, *offsets[p])]
        lo, hi = int(segs.min()), int(segs.max())
        joined[lo + 1 : hi + 1] = True
        first_segment[j] = lo
    group = np.cumsum(~joined) - 1
    stops = np.append(bounds[1:], len(text))
    spans, members = [], []
    token_group = group[first_segment]
    for g in np.unique(token_group):
        segs = np.flatnonzero(group == g)
        a, b = _trimmed(text, int(bounds[segs[0]]), int(stops[segs[-1]]))
        mine = positions[token_group == g]
        if a == b:  # whitespace only (a text of blanks): the tokens' own extent
            a, b = int(offsets[mine, 0].min()), int(offsets[mine, 1].max())
        spans.append((a, b))
        members.append(mine)
    return Units(
        kind=kind, spans=np.array(spans, dtype=np.int64), members=tuple(members), n_tokens=len(offsets)
    )


def attribution_units(
    text: str,
    offsets: np.ndarray,
    special: np.ndarray,
    kind: str = "auto",
    *,
    max_tokens: int = 64,
    max_words: int = AUTO_MAX_WORDS,
) -> Units:
    """The units an attribution of this text runs over. ``"auto"``: tokens up to `max_tokens`
    content tokens, words up to `max_words` words, sentences beyond; any other kind as named."""
    if kind != "auto":
        return segment(text, offsets, special, kind)
    if int((~np.asarray(special, dtype=bool)).sum()) <= max_tokens:
        return segment(text, offsets, special, "token")
    words = segment(text, offsets, special, "word")
    return words if len(words) <= max_words else segment(text, offsets, special, "sentence")
