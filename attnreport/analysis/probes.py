"""Counterfactual probes: a text with some of its words swapped, and what that did to the prediction.

A probe (`[[probes]]`) names terms to swap both ways (``swap = [["he", "she"]]``: every "he" becomes
"she" and every "she" "he", in one pass, so nothing is swapped twice) or to replace one way
(``replace = {"urgent": "soon"}``). Terms match whole words, Unicode-aware ("the" is not found in
"there", nor "café" in "cafés"); terms of scripts written without spaces (Han, kana) match as they
stand, as `token_groups.term_pattern` matches them. Matching ignores case, and the replacement
takes the found word's case pattern: "He" -> "She", "HE" -> "SHE".

Over the texts a probe matches, the model's prediction before and after: how many flipped, and
the mean change of the probability of the class predicted before (with a bootstrap interval over
texts), so a reader sees whether a swap moves the model and by how much.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from attnreport.analysis.token_groups import bootstrap_mean, is_spaced

if TYPE_CHECKING:
    from attnreport.analysis.results import ExampleAnalysis
    from attnreport.analysis.variants import VariantComparison


def _key(term: str) -> str:
    """What a found term is looked up by: case and runs of spaces do not count."""
    return " ".join(term.split()).casefold()


def match_case(found: str, term: str, replacement: str) -> str:
    """`replacement` in the case pattern of `found` (a match of `term`): as written where the text
    writes the term as the config does; else UPPER, Title or lower like the found word."""
    if found == term:
        return replacement
    cased = [ch for ch in found if ch.isupper() or ch.islower()]
    if len(cased) > 1 and all(ch.isupper() for ch in cased):
        return replacement.upper()
    if cased and cased[0].isupper() and found[1:] == found[1:].lower():
        return replacement[:1].upper() + replacement[1:]
    if found == found.lower():
        return replacement.lower()
    return replacement


def _term_regex(term: str) -> str:
    """One term as a pattern: its words with any run of spaces between, on word boundaries where
    its script has them."""
    core = r"\s+".join(re.escape(part) for part in term.split())
    return rf"(?<!\w){core}(?!\w)" if is_spaced(term) else core


@dataclass(frozen=True)
class Rewrite:
    """A probe's terms as one pattern, each found term mapped to its replacement."""

    #: casefolded term -> (the term as the config writes it, its replacement)
    targets: dict[str, tuple[str, str]]
    pattern: re.Pattern

    def apply(self, text: str) -> tuple[str, int]:
        """The counterfactual text, and how many terms were replaced (0: the probe does not match)."""
        done = self.rewrite(text)
        return done.text, len(done.before)

    def rewrite(self, text: str) -> Rewritten:
        """The counterfactual text with the character spans of every replaced term, in both texts."""
        pieces, before, after = [], [], []
        at = shift = 0
        for m in self.pattern.finditer(text):
            target = self.targets.get(_key(m.group(0)))
            if target is None:  # a case folding the pattern matched and the key does not
                continue
            new = match_case(m.group(0), *target)
            pieces += [text[at : m.start()], new]
            before.append((m.start(), m.end()))
            after.append((m.start() + shift, m.start() + shift + len(new)))
            shift += len(new) - (m.end() - m.start())
            at = m.end()
        pieces.append(text[at:])
        return Rewritten("".join(pieces), before, after)


@dataclass(frozen=True)
class Rewritten:
    """A rewritten text, and where its replaced terms sit: ``[start, stop)`` character spans in
    the original (`before`) and in the counterfactual (`after`), in order."""

    text: str
    before: list[tuple[int, int]]
    after: list[tuple[int, int]]


def rewrite_rule(swap: list[list[str]], replace: dict[str, str]) -> Rewrite:
    """The rewrite of a probe: each swap pair both ways, each replacement one way. Longer terms are
    tried first, so "Mr Smith" is replaced before "Mr". The caller checks the terms (config)."""
    targets: dict[str, tuple[str, str]] = {}
    for a, b in swap:
        targets[_key(a)] = (a, b)
        targets[_key(b)] = (b, a)
    for a, b in replace.items():
        targets[_key(a)] = (a, b)
    terms = sorted((term for term, _ in targets.values()), key=lambda t: (-len(t), t))
    pattern = re.compile("|".join(_term_regex(t) for t in terms), re.IGNORECASE)
    return Rewrite(targets=targets, pattern=pattern)


@dataclass
class ProbePair:
    """One text a probe matched: the text and its counterfactual, with the class probabilities of
    both."""

    id: str
    text: str
    counterfactual: str
    #: how many terms were replaced
    replacements: int
    label: str | None
    before: np.ndarray
    after: np.ndarray
    #: the replaced terms' character spans in the text and in the counterfactual
    spans_before: list[tuple[int, int]] = field(default_factory=list)
    spans_after: list[tuple[int, int]] = field(default_factory=list)

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.before))

    @property
    def predicted_after(self) -> int:
        return int(np.argmax(self.after))

    @property
    def flipped(self) -> bool:
        return self.predicted_after != self.predicted

    @property
    def change(self) -> float:
        """The change in the probability of the class predicted before (negative: less sure of it)."""
        k = self.predicted
        return float(self.after[k] - self.before[k])


@dataclass
class ProbeResult:
    """A probe over the dataset: every matched text's pair, and the texts shown side by side."""

    name: str
    swap: list[list[str]]
    replace: dict[str, str]
    labels: list[str]
    #: every matched text scored both times, in row order
    pairs: list[ProbePair] = field(default_factory=list)
    #: matched texts left out because the model's logits were not finite for one of the two
    unscored: int = 0
    #: how many of the largest changes get a page
    top: int = 5
    #: the shown pairs' two sides by pair id: (original, counterfactual), each an
    #: `results.ExampleAnalysis` with its attributions
    sides: dict[str, tuple[ExampleAnalysis, ExampleAnalysis]] = field(default_factory=dict)

    @property
    def matched(self) -> int:
        return len(self.pairs) + self.unscored

    @property
    def flipped(self) -> int:
        return sum(p.flipped for p in self.pairs)

    def mean_change(self) -> tuple[float, float, float] | None:
        """The mean change over the scored pairs and its 95% bootstrap interval; None without any."""
        if not self.pairs:
            return None
        mean, low, high = bootstrap_mean(np.array([p.change for p in self.pairs]))
        return float(mean), float(low), float(high)

    def flips(self) -> list[tuple[str, str, int]]:
        """(class before, class after, texts) for every way the predictions flipped, most first."""
        counted = Counter(
            (self.labels[p.predicted], self.labels[p.predicted_after]) for p in self.pairs if p.flipped
        )
        return [(a, b, n) for (a, b), n in sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))]

    def shown(self) -> list[ProbePair]:
        """The `top` pairs of the largest absolute change (flips first among equals), row order
        breaking ties."""
        order = sorted(
            range(len(self.pairs)),
            key=lambda i: (-abs(self.pairs[i].change), not self.pairs[i].flipped, i),
        )
        return [self.pairs[i] for i in order[: self.top]]


@dataclass
class AnswerProbe:
    """A probe over a generation report's prompts: each prompt it matches asked again rewritten,
    both answers set side by side (`variants.VariantComparison`, one per matched prompt)."""

    name: str
    swap: list[list[str]]
    replace: dict[str, str]
    #: every matched prompt's comparison, in prompt order
    pairs: list[VariantComparison] = field(default_factory=list)

    @property
    def matched(self) -> int:
        return len(self.pairs)

    @property
    def changed(self) -> int:
        """The prompts whose answer changed (the two answers part at some step)."""
        return sum(p.diverge_step is not None for p in self.pairs)

    def mean_change(self) -> tuple[float, float, float] | None:
        """The mean change of the original answer's log-probability under the rewritten prompt, with
        its 95% bootstrap interval over prompts; None without a pair that has one."""
        changes = [
            p.base_answer_under_variant - p.base.log_probability
            for p in self.pairs
            if p.base_answer_under_variant is not None and np.isfinite(p.base_answer_under_variant)
        ]
        if not changes:
            return None
        mean, low, high = bootstrap_mean(np.array(changes))
        return float(mean), float(low), float(high)
