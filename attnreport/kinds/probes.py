"""Counterfactual probes in a build: each matched text run again with its terms swapped.

In a generation report a probe's rewrites are prompt variants (`[[variants]]`) made by rule: each
matched prompt is asked again rewritten, and the variants' machinery sets both answers side by side
(where they part, the first answer's log-probability under the rewritten prompt).

The converse of `[compare]` (the same texts through a second model): the same model on a second
text. As the build's traces stream by, each probe's rewrite is tried on every text and the
prediction of the texts it changes is kept (a few floats each); once the stream is done, the
counterfactual texts are traced in batches, and the pairs of the largest change are explained
(both texts' attributions; the original's come from the analysis cache) for their pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from attnreport.analysis.predictions import softmax
from attnreport.analysis.probes import AnswerProbe, ProbePair, ProbeResult, Rewrite, Rewritten, rewrite_rule
from attnreport.analysis.results import describe
from attnreport.analysis.variants import VariantComparison
from attnreport.core.config import ProbeConfig, VariantConfig
from attnreport.core.trace import Trace
from attnreport.run.stage import AnalysisStage
from attnreport.trace import Row


@dataclass
class _Match:
    id: str
    text: str
    counterfactual: str
    spans: Rewritten
    label: str | None
    #: the original's class probabilities; None when its logits were not finite
    before: np.ndarray | None


def probabilities(trace: Trace, labels: list[str]) -> np.ndarray | None:
    """The class probabilities of a trace; None without finite logits or without `labels` (the
    model's classes: a model without them has no prediction to move)."""
    if not labels or trace.logits is None or not np.isfinite(trace.logits).all():
        return None
    return softmax(trace.logits)


class ProbeStage:
    """Every `[[probes]]` of a classification build, tried on the texts as they stream by."""

    def __init__(self, analysis: AnalysisStage, probes: list[ProbeConfig]) -> None:
        self.analysis = analysis
        self.probes = probes
        self.rules: list[Rewrite] = [rewrite_rule(p.swap, p.replace) for p in probes]
        self.matches: list[list[_Match]] = [[] for _ in probes]
        self.labels = list(analysis.tracer.card.labels)

    def stream(self, traces: Iterable[Trace]) -> Iterator[Trace]:
        for trace in traces:
            before = None
            for matches, rule in zip(self.matches, self.rules, strict=True):
                done = rule.rewrite(trace.text)
                if done.before:
                    if before is None:
                        before = probabilities(trace, self.labels)
                    matches.append(_Match(trace.id, trace.text, done.text, done, trace.label, before))
            yield trace

    def _after(self) -> list[list[np.ndarray | None]]:
        """Every counterfactual's probabilities, all probes' texts traced in one stream."""
        rows = (
            Row(id=f"{m.id}~probe-{k}", text=m.counterfactual, label=m.label, line=0)
            for k, matches in enumerate(self.matches)
            for m in matches
        )
        scored = iter([probabilities(t, self.labels) for t in self.analysis.tracer.trace(rows)])
        return [[next(scored) for _ in matches] for matches in self.matches]

    def results(self) -> list[ProbeResult]:
        """Each probe over the dataset, its top pairs explained side by side; after the stream."""
        labels = self.labels
        out = []
        for probe, matches, after in zip(self.probes, self.matches, self._after(), strict=True):
            result = ProbeResult(
                name=probe.name, swap=probe.swap, replace=probe.replace, labels=labels, top=probe.top
            )
            for m, a in zip(matches, after, strict=True):
                if m.before is None or a is None:
                    result.unscored += 1
                    continue
                s = m.spans
                pair = ProbePair(m.id, m.text, m.counterfactual, len(s.before), m.label, m.before, a)
                pair.spans_before, pair.spans_after = s.before, s.after
                result.pairs.append(pair)
            result.sides = {p.id: self.explain(p) for p in result.shown()}
            out.append(result)
        return out

    def explain(self, pair: ProbePair):
        """The original and the counterfactual, each traced (from the cache) and explained."""
        tracer = self.analysis.tracer
        rows = [
            Row(id=pair.id, text=pair.text, label=pair.label, line=0),
            Row(id=f"{pair.id}~counterfactual", text=pair.counterfactual, label=pair.label, line=0),
        ]
        sides = []
        for trace in tracer.trace(rows):
            example = describe(trace, tracer.card, unknown_token=tracer.tokenizer.unk_token)
            example.explanation = self.analysis.explain(trace, example.rollout_row)
            sides.append(example)
        return tuple(sides)


def probe_variants(probes: list[ProbeConfig], rows: Iterable[Row]) -> list[VariantConfig]:
    """Each prompt a probe matches, rewritten, as a variant of it (id ``<prompt id>~probe-<k>``,
    k counting the probes from 1; named by the probe)."""
    rules = [rewrite_rule(p.swap, p.replace) for p in probes]
    out = []
    for row in rows:
        for k, (probe, rule) in enumerate(zip(probes, rules, strict=True), start=1):
            counterfactual, count = rule.apply(row.text)
            if count:
                out.append(
                    VariantConfig(of=row.id, prompt=counterfactual, name=probe.name, id=f"{row.id}~probe-{k}")
                )
    return out


def answer_probes(probes: list[ProbeConfig], comparisons: list[VariantComparison]) -> list[AnswerProbe]:
    """The probes of a generation report, each with the comparisons of the variants it made."""
    out = [AnswerProbe(name=p.name, swap=p.swap, replace=p.replace) for p in probes]
    for c in comparisons:
        head, _, k = c.id.rpartition("~probe-")
        if head and k.isdigit() and 1 <= int(k) <= len(out):
            out[int(k) - 1].pairs.append(c)
    return out
