"""Attention and attribution by token group: do numbers, symptoms or amounts get more than their share?

Claims such as "numbers get 37% more attention in financial texts" become measurable on a user's
own model. A group is a set of tokens of each text: built-in ones that work in any script (numbers
in Unicode digits, amounts such as "1,200.50" included; punctuation; special tokens) and the
config's own (`[analysis.token_groups]`: a word list, matched case-insensitively on word
boundaries, or on the characters alone for scripts without spaces; or "regex:<pattern>").

Per layer, attention *received*: each token's attention from every query, mean of heads and
queries; a group's value in one text is the mean over its tokens divided by the mean over every
content token (1 = a token's average). Attribution: the share of a text's absolute attribution mass
on the group divided by the group's share of the tokens (1 = its share). Both are averaged over the
texts that have the group, with a 95% bootstrap interval over texts, so a reader sees whether a
difference is real.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: a token's text without the tokenizers' word-piece and space markers
_MARKERS = re.compile(r"^(##|Ġ|▁)")
_AMOUNT_PUNCTUATION = set(",.'\u066b\u066c\u00a0")


def _token_text(token: str) -> str:
    return _MARKERS.sub("", token)


def is_number(token: str) -> bool:
    """Digits of any script, with the separators of an amount ("1,200.50", "٣٫٥")."""
    text = _token_text(token)
    return any(ch.isdigit() for ch in text) and all(ch.isdigit() or ch in _AMOUNT_PUNCTUATION for ch in text)


def is_punctuation(token: str) -> bool:
    text = _token_text(token)
    return bool(text) and all(unicodedata.category(ch).startswith("P") for ch in text)


#: the built-in groups: token text (and whether it is special) -> member
BUILT_IN: dict[str, Callable[[str, bool], bool]] = {
    "numbers": lambda token, special: not special and is_number(token),
    "punctuation": lambda token, special: not special and is_punctuation(token),
    "special": lambda token, special: special,
}


def is_spaced(term: str) -> bool:
    """Terms of scripts written with spaces get word boundaries; Han, kana and the like do not."""
    return all(not ("\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff") for ch in term)


def term_pattern(spec: str | list[str]) -> re.Pattern:
    """A config group as one pattern over the text: "regex:..." as given, a word list as words."""
    if isinstance(spec, str):
        if not spec.startswith("regex:"):
            raise ValueError(f'a token group is a list of words or "regex:<pattern>", not {spec!r}')
        return re.compile(spec[len("regex:") :])
    parts = [rf"\b{re.escape(t)}\b" if is_spaced(t) else re.escape(t) for t in spec if t]
    if not parts:
        raise ValueError("a token group's word list is empty")
    return re.compile("|".join(parts), re.IGNORECASE)


def user_group(text: str, offsets: np.ndarray, special: np.ndarray, pattern: re.Pattern) -> np.ndarray:
    """The tokens whose characters overlap a match of `pattern` in `text`."""
    offsets = np.asarray(offsets).reshape(-1, 2)
    member = np.zeros(len(offsets), dtype=bool)
    for m in pattern.finditer(text):
        if m.end() > m.start():
            member |= (offsets[:, 0] < m.end()) & (offsets[:, 1] > m.start())
    return member & ~np.asarray(special, dtype=bool)


def group_members(
    tokens: list[str], text: str, offsets: np.ndarray, special: np.ndarray, patterns: dict[str, re.Pattern]
) -> dict[str, np.ndarray]:
    special = np.asarray(special, dtype=bool)
    out = {
        name: np.array([rule(t, s) for t, s in zip(tokens, special, strict=True)])
        for name, rule in BUILT_IN.items()
    }
    for name, pattern in patterns.items():
        out[name] = user_group(text, offsets, special, pattern)
    return out


def received(attentions: np.ndarray) -> np.ndarray:
    """``[L, n]``: attention each key token receives, mean of heads and queries."""
    return np.asarray(attentions).mean(axis=(1, 2), dtype=np.float64)


def attention_ratio(
    received_by_layer: np.ndarray, members: np.ndarray, content: np.ndarray
) -> np.ndarray | None:
    """``[L]``: the group's mean received attention over the content tokens' mean; None without
    any group token (special tokens are measured against the content tokens too)."""
    if not members.any() or not content.any():
        return None
    base = received_by_layer[:, content].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return received_by_layer[:, members].mean(axis=1) / base


def attribution_ratio(values: np.ndarray, members: np.ndarray, content: np.ndarray) -> float | None:
    """The group's share of the absolute attribution mass over its share of the content tokens."""
    members = members & content
    mass = np.abs(np.asarray(values, dtype=np.float64))[content].sum()
    if not members.any() or mass == 0:
        return None
    return float(np.abs(values)[members].sum() / mass / (members.sum() / content.sum()))


def bootstrap_mean(values: np.ndarray, *, resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """The mean over texts and its 95% percentile bootstrap interval (resampling texts)."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    return values.mean(axis=0), low, high


@dataclass
class TextMeasure:
    """One text's measurements per group, or why the text is left out ("windowed", "nonfinite")."""

    left_out: str | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    attention: dict[str, np.ndarray] = field(default_factory=dict)
    attribution: dict[str, float] = field(default_factory=dict)


@dataclass
class TokenGroupTally:
    """Per group, each text's ratios as the texts stream by (a few floats per text and layer)."""

    patterns: dict[str, re.Pattern]
    attention: dict[str, list[np.ndarray]] = field(default_factory=dict)
    attribution: dict[str, list[float]] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    texts: int = 0
    #: texts left out because their attention was not finite
    nonfinite: int = 0
    #: texts left out because they ran in windows
    windowed: int = 0

    @classmethod
    def from_config(cls, groups: dict) -> TokenGroupTally:
        return cls({name: term_pattern(spec) for name, spec in groups.items()})

    def add(self, trace, attribution_values: np.ndarray | None) -> TextMeasure:
        """One text: its trace, and its token attributions (one per token), None without; returns
        what was measured, so another tally (a data group's) can `record` it without measuring again."""
        measured = self.measure(trace, attribution_values)
        self.record(measured)
        return measured

    def measure(self, trace, attribution_values: np.ndarray | None) -> TextMeasure:
        """One text's ratios per group (the costly part: attention received, the groups' tokens)."""
        if trace.windows:
            return TextMeasure(left_out="windowed")  # stitched, not one matrix: left out, counted
        by_layer = received(trace.attentions)
        if not np.isfinite(by_layer).all():
            return TextMeasure(left_out="nonfinite")  # a broken model's text would poison every mean
        content = ~np.asarray(trace.special, dtype=bool)
        members = group_members(list(trace.tokens), trace.text, trace.offsets, ~content, self.patterns)
        usable = attribution_values is not None and np.isfinite(attribution_values).all()
        out = TextMeasure()
        for name, m in members.items():
            out.tokens[name] = int(m.sum())
            ratio = attention_ratio(by_layer, m, content)
            if ratio is not None:
                out.attention[name] = ratio
            if usable and name != "special":
                r = attribution_ratio(attribution_values, m, content)
                if r is not None:
                    out.attribution[name] = r
        return out

    def record(self, measured: TextMeasure) -> None:
        if measured.left_out == "windowed":
            self.windowed += 1
            return
        if measured.left_out == "nonfinite":
            self.nonfinite += 1
            return
        self.texts += 1
        for name, count in measured.tokens.items():
            self.tokens[name] = self.tokens.get(name, 0) + count
        for name, ratio in measured.attention.items():
            self.attention.setdefault(name, []).append(ratio)
        for name, ratio in measured.attribution.items():
            self.attribution.setdefault(name, []).append(ratio)

    def summary(self) -> dict:
        """report.json's `token_groups`: per group, the texts and tokens it has, attention received
        per layer relative to a token's average, and attribution per token relative to its share,
        each with the mean over texts and a 95% bootstrap interval."""
        out = {}
        for name in [*BUILT_IN, *self.patterns]:
            entry = {"tokens": self.tokens.get(name, 0), "texts": len(self.attention.get(name, []))}
            rows = self.attention.get(name)
            if rows:
                mean, low, high = bootstrap_mean(np.stack(rows))
                entry["attention"] = {"mean": mean.tolist(), "low": low.tolist(), "high": high.tolist()}
            shares = self.attribution.get(name)
            if shares:
                mean, low, high = bootstrap_mean(np.array(shares))
                entry["attribution"] = {
                    "mean": float(mean),
                    "low": float(low),
                    "high": float(high),
                    "texts": len(shares),
                }
            out[name] = entry
        return {
            "texts": self.texts,
            "nonfinite_texts": self.nonfinite,
            "windowed_texts": self.windowed,
            "groups": out,
        }
