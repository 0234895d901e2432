"""The analysis stage in a build: traces stream through, results come out beside them.

The functions of this package are pure and know nothing of builds. This module is the one
place that runs them over a stream of traces: per example (attributions, faithfulness,
rollout, flow) as the trace goes by, with results cached by model and options; over the
dataset (head atlas, decision space, comparison) from small running sums, so no trace is
kept after its page data is spooled.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np

from attnreport.analysis.aggregate import DistanceDecay
from attnreport.analysis.compare import compare_pair, summarise_comparison
from attnreport.analysis.decision import DecisionSpace, decision_space, fit_probe, pool
from attnreport.analysis.explain import EXPLANATION_VERSION, Explanation, explain
from attnreport.analysis.heads import HeadAtlas, HeadThresholds, induction_scores, repeated_random_tokens
from attnreport.analysis.results import AnalysisResults, Comparison, ExampleAnalysis, HeadSummary, describe
from attnreport.analysis.tally import ExampleTally
from attnreport.core.config import AnalysisConfig
from attnreport.core.errors import ConfigError
from attnreport.core.jsonsafe import clean
from attnreport.trace import Tracer
from attnreport.trace.cache import ResultCache
from attnreport.trace.evaluate import HeadModel, MaskedModel


def explain_traced(
    tracer: Tracer,
    trace,
    options: AnalysisConfig,
    *,
    rollout_row: np.ndarray | None = None,
    random_state: int = 0,
) -> Explanation:
    """`analysis.explain.explain` of one traced example, with `tracer`'s model as the function over
    masks it plays its games on (`MaskedModel`)."""
    return explain(
        trace,
        options,
        card=tracer.card,
        tokenizer=tracer.tokenizer,
        masked_model=lambda: MaskedModel(tracer, trace, output=options.output),
        rollout_row=rollout_row,
        random_state=random_state,
    )


class AnalysisStage:
    """Runs the analysis on traces as they stream by, with the per-example results cached."""

    def __init__(
        self, tracer: Tracer, options: AnalysisConfig, cache_dir: Path, *, group_column: str = ""
    ) -> None:
        """`group_column` (`[data] group_column`) turns on the results by data group."""
        self.tracer = tracer
        self.options = options
        # checked before any model runs: a misspelt threshold is a config error, not a late crash
        self.thresholds = HeadThresholds.from_dict(options.head_thresholds)
        card = tracer.card
        self.atlas = HeadAtlas(
            card.layers, card.heads, causal=card.causal, window=self.thresholds.local_window
        )
        self.ids: list[str] = []
        self.pooled: list[np.ndarray] = []
        #: the per-layer decision spaces' layers (absolute, 0: the embeddings), and their pooled states
        self.extra_layers = self._extra_layers(card.layers)
        self.pooled_at: dict[int, list[np.ndarray]] = {layer: [] for layer in self.extra_layers}
        self.truth: list[str | None] = []
        unknown = [name for name in options.critical_labels if name not in card.labels]
        if unknown:
            raise ConfigError(
                f"[analysis] critical_labels: {unknown[0]!r} is not a label of this model; "
                f"its labels: {', '.join(card.labels) or '(none)'}"
            )
        asked = options.explain_classes
        unknown = [name for name in asked if name not in card.labels] if isinstance(asked, list) else []
        if unknown:
            raise ConfigError(
                f"[analysis] explain_classes: {unknown[0]!r} is not a label of this model; "
                f"its labels: {', '.join(card.labels) or '(none)'}"
            )
        self.tally = ExampleTally(
            card.labels,
            critical=options.critical_labels,
            token_groups=options.token_groups,
            group_column=group_column,
        )
        #: per example, the predicted class (-1: none, its logits were not finite)
        self.predicted: list[int] = []
        self.cache = None
        if tracer.key:
            # the decision spaces and critical labels are dataset-level: their options do not
            # touch the per-example results
            dataset_level = ("decision_layers", "critical_labels")
            key = {k: v for k, v in asdict(options).items() if k not in dataset_level}
            key["explanation_version"] = EXPLANATION_VERSION
            self.cache = ResultCache(cache_dir, "analysis", tracer.key, key)
        self.computed = 0
        # attention by distance over the dataset, binned up to the longest input the model runs
        self.decay = DistanceDecay(card.layers, max(tracer.window, 2), causal=card.causal)

    def _extra_layers(self, layers: int) -> list[int]:
        """The layers of `decision_layers` (negative ones count from the last) other than the default."""
        asked = self.options.decision_layers
        asked = list(range(layers + 1)) if asked == "all" else list(asked)
        bad = [layer for layer in asked if not -layers - 1 <= layer <= layers]
        if bad:
            raise ConfigError(
                f"[analysis] decision_layers: layer {bad[0]} is not a hidden layer of this model; "
                f"it has layers 0 (the embeddings) to {layers}"
            )
        default = self.options.decision_layer % (layers + 1)
        return sorted({layer % (layers + 1) for layer in asked} - {default})

    @property
    def pooling(self) -> str:
        return self.options.decision_pooling or self.tracer.card.read_position

    def explain(self, trace, rollout_row: np.ndarray) -> Explanation:
        cached = self.cache.get(trace.text) if self.cache else None
        if cached is not None:
            return Explanation.from_dict(cached)
        # handed on as plain rounded values, exactly as a later build reads them from the cache,
        # so a rebuild's dataset means and bytes are the same
        result = clean(explain_traced(self.tracer, trace, self.options, rollout_row=rollout_row).to_dict())
        self.computed += 1
        if self.cache:
            self.cache.put(trace.text, result)
        return Explanation.from_dict(result)

    def stream(self, traces) -> Iterator[ExampleAnalysis]:
        """Yield each trace's `ExampleAnalysis`, keeping only the dataset-level sums."""
        card = self.tracer.card
        for trace in traces:
            self.atlas.add(trace)
            self.decay.add(trace.attentions, trace.special)
            self.ids.append(trace.id)
            self.pooled.append(
                pool(trace.hidden, trace.special, pooling=self.pooling, layer=self.options.decision_layer)
            )
            for layer, pooled in self.pooled_at.items():
                pooled.append(pool(trace.hidden, trace.special, pooling=self.pooling, layer=layer))
            self.truth.append(trace.label)
            if trace.logits is not None:  # a NaN's argmax is no prediction: -1 marks it
                finite = np.isfinite(trace.logits).all()
                self.predicted.append(int(np.argmax(trace.logits)) if finite else -1)
            example = describe(trace, card, unknown_token=self.tracer.tokenizer.unk_token)
            example.explanation = self.explain(trace, example.rollout_row)
            self.tally.add(example)
            yield example

    def finish(self, comparison: CompareStage | None = None) -> AnalysisResults:
        """The dataset-level results, once every trace has streamed by."""
        space = self.decision()
        return self.tally.results(
            heads=self.heads(),
            distance_profile=self.decay.profile(),
            decision_space=space,
            layer_spaces=self.layer_decisions() if space is not None else [],
            comparison=None if comparison is None else comparison.result(),
        )

    def _drawable(self, pooled: list[np.ndarray]) -> np.ndarray:
        """Indices of the examples with a prediction and a finite pooled state: the others
        would put NaN into the PCA (or a made-up class on the slice) and get no point."""
        predicted = np.array(self.predicted)
        finite = np.array([np.isfinite(p).all() for p in pooled], dtype=bool)
        return np.flatnonzero((predicted >= 0) & finite)

    def _head_for(self, layer: int, pooled: np.ndarray, targets: list[str], target: str):
        """The model's own head where it reads this layer and pooling, else a logistic-regression
        probe fitted to `targets` (the labels, or the predictions); None when a probe has fewer
        than two classes to separate. Returns (head, source, what the probe was fitted to)."""
        card = self.tracer.card
        if card.has_head and self.pooling == card.read_position and layer in (-1, card.layers):
            return HeadModel(self.tracer.folder), "model_head", None
        known = [i for i, t in enumerate(targets) if t in card.labels]
        if len({targets[i] for i in known}) < 2:
            return None
        probe = fit_probe(pooled[known], [targets[i] for i in known], card.labels)
        return probe, "probe", target

    def decision(self) -> DecisionSpace | None:
        """The decision space, drawn by the model's head when it reads this pooling, else a probe
        fitted to the true labels."""
        card = self.tracer.card
        if len(self.pooled) < 2 or not card.labels or len(self.predicted) != len(self.pooled):
            return None
        rows = self._drawable(self.pooled)
        if len(rows) < 2:
            return None
        pooled = np.stack([self.pooled[i] for i in rows])
        chosen = self._head_for(self.options.decision_layer, pooled, [self.truth[i] for i in rows], "label")
        if chosen is None:
            return None
        head, source, target = chosen
        return decision_space(
            pooled,
            np.array(self.predicted)[rows],
            head,
            labels=card.labels,
            layer=self.options.decision_layer,
            pooling=self.pooling,
            source=source,
            probe_target=target,
            rows=rows,
            withheld=len(self.pooled) - len(rows),
        )

    def layer_decisions(self) -> list[DecisionSpace]:
        """The decision spaces at the extra layers of `decision_layers`, by layer. The model's
        head draws the last layer's when it reads this pooling; elsewhere a logistic-regression
        probe fitted to the model's own predictions does (a probe, not the model's head)."""
        card = self.tracer.card
        if len(self.ids) < 2 or not card.labels or len(self.predicted) != len(self.ids):
            return []
        spaces = []
        for layer, at_layer in self.pooled_at.items():
            rows = self._drawable(at_layer)
            if len(rows) < 2:
                continue
            pooled = np.stack([at_layer[i] for i in rows])
            predicted = np.array(self.predicted)[rows]
            if np.ptp(pooled, axis=0).max() <= 1e-6 * max(float(np.abs(pooled).max()), 1.0):
                continue  # every example the same here (the first token before any attention): no picture
            chosen = self._head_for(layer, pooled, [card.labels[p] for p in predicted], "prediction")
            if chosen is None:  # one predicted class: nothing for a probe to separate
                continue
            head, source, target = chosen
            spaces.append(
                decision_space(
                    pooled,
                    predicted,
                    head,
                    labels=card.labels,
                    layer=layer,
                    pooling=self.pooling,
                    source=source,
                    probe_target=target,
                    rows=rows,
                    withheld=len(at_layer) - len(rows),
                )
            )
        return spaces

    def induction_probe(self, period: int = 32) -> np.ndarray:
        """Olsson et al.'s probe: a random token sequence repeated twice, after the prefix tokens."""
        tok = self.tracer.tokenizer
        period = max(3, min(period, (self.tracer.window - 1) // 2))
        ids = repeated_random_tokens(tok.vocab_size, period, random_state=0, exclude=tok.special_ids)
        full = np.concatenate([tok.prefix_ids, ids, tok.suffix_ids])
        return induction_scores(self.tracer.attentions_for_ids(full), period, len(tok.prefix_ids))

    def heads(self) -> list[HeadSummary]:
        """The head atlas over every example streamed, typical examples named by id."""
        if not len(self.atlas):
            return []
        induction = self.induction_probe() if self.tracer.card.causal else None
        return [
            HeadSummary(scores=h, typical_ids=[self.ids[i] for i in h.typical])
            for h in self.atlas.scores(self.thresholds, induction=induction)
        ]


class CompareStage:
    """The same rows through a second tracer (another model, or the int8 export), compared
    trace by trace as the main traces stream by."""

    def __init__(self, main: Tracer, other: Tracer, rows, *, name: str) -> None:
        self.main = main
        self.tracer = other
        self.rows = rows
        self.name = name
        self.pairs: list[dict] = []

    def stream(self, traces):
        for a, b in zip(traces, self.tracer.trace(self.rows), strict=True):
            self.pairs.append(compare_pair(a, b, self.main.card.labels, self.tracer.card.labels))
            yield a

    def result(self) -> Comparison:
        card = self.tracer.card
        return Comparison(
            name=self.name,
            architecture=card.architecture,
            file=self.tracer.model_path.name,
            labels=list(card.labels),
            pairs=self.pairs,
            summary=summarise_comparison(self.pairs),
        )
