"""Everything computed for one example: attributions, flow, and how faithful each view is.

The model is reached only through a value function over masks (a `MaskedModel` of
`attnreport.trace.evaluate`, handed in by `attnreport.run.stage`, which drives models: this
module runs none); every coalition is evaluated once, batched,
and shared between methods through `VectorMemo`. The players of every game are the text's
attribution units (`analysis.units`): single tokens for short texts, words or sentences
for long ones, a unit masked as all its tokens, so a long text costs runs per unit, not
per token; texts traced in windows are evaluated through the same windows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from attnreport.analysis.attribution_methods import (
    OUTPUT_RANGE,
    Attribution,
    VectorMemo,
    asked_methods,
)
from attnreport.analysis.faithfulness import faithfulness, random_faithfulness
from attnreport.analysis.flow import MAX_FLOW_TOKENS, attention_flow
from attnreport.analysis.rollout import read_row, rollout
from attnreport.analysis.units import Units, attribution_units
from attnreport.core.config import AnalysisConfig
from attnreport.core.modelcard import ModelCard
from attnreport.core.trace import Trace

#: the shape of a cached `Explanation`: part of its cache key, so results an older version made
#: (without the fields added since) are recomputed, not served; bump it when a field is added
EXPLANATION_VERSION = 3


@dataclass
class Explanation:
    #: method -> {"values", "unit", plus the method's facts}: for unit "token" one value per
    #: token (0 for special tokens), else one per unit of "units" ({"start", "stop", "text"})
    attributions: dict[str, dict] = field(default_factory=dict)
    #: method -> comprehensiveness / sufficiency; "random" is the bar to clear
    faithfulness: dict[str, dict] = field(default_factory=dict)
    #: attention flow into the read position, one value per token; None when too long
    flow: list[float] | None = None
    #: Spearman correlation of each view's token ranking with occlusion (blank-out) importance
    agreement: dict[str, float | None] = field(default_factory=dict)
    #: why something was not computed
    skipped: dict[str, str] = field(default_factory=dict)
    #: sequences run through the model for the attributions and faithfulness (windows counted)
    model_runs: int = 0
    #: the other explained classes (`[analysis] explain_classes`), most probable first: label ->
    #: method -> the same entry as `attributions`, its target that class
    classes: dict[str, dict[str, dict]] = field(default_factory=dict)
    #: the predicted class against the runner-up: {"a", "b", "output", method -> entry}, each
    #: method's values the attributions of f(A) - f(B); None with one class explained
    contrast: dict | None = None

    def to_dict(self) -> dict:
        return {
            "model_runs": self.model_runs,
            "attributions": self.attributions,
            "classes": self.classes,
            "contrast": self.contrast,
            "faithfulness": self.faithfulness,
            "flow": self.flow,
            "agreement": self.agreement,
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Explanation:
        return cls(**data)


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Rank correlation; None when either side is constant (no ranking to compare)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def raw_attention(trace: Trace, read_position: str) -> np.ndarray:
    """The last layer's head-averaged attention row of the read position: the naive view."""
    return read_row(trace.attentions[-1].mean(axis=0), read_position)


def _per_token(trace: Trace, content_values: np.ndarray) -> list[float]:
    values = np.zeros(trace.n_tokens)
    values[~trace.special] = content_values
    return values.tolist()


def _stated(trace: Trace, units: Units, unit_values: np.ndarray) -> list[float]:
    """Values as report.json holds them: one per token for token units (the old shape, which
    every reader of a token list expects), else one per unit."""
    return _per_token(trace, unit_values) if units.kind == "token" else np.asarray(unit_values).tolist()


def explained_classes(asked, probabilities: np.ndarray, labels: list[str]) -> list[int]:
    """The classes to explain, most probable first, the predicted one always among them: the top
    `asked` (a whole number), "all", or the named labels."""
    order = [int(i) for i in np.argsort(-np.asarray(probabilities), kind="stable")]
    if asked == "all":
        return order
    if isinstance(asked, int):
        return order[: max(1, asked)]
    named = {labels.index(name) for name in asked if name in labels}
    return [i for i in order if i == order[0] or i in named]


def _class_label(card, tok, index: int) -> str:
    return card.labels[index] if card.labels else (tok.token(index) or str(index))


class MaskedRuns(Protocol):
    """The model as a function over masks (`attnreport.trace.evaluate.MaskedModel`)."""

    declaration: Any
    positions: Any
    windows: Any
    rows: int

    def outputs(self, masks: np.ndarray) -> np.ndarray: ...


def explain(
    trace: Trace,
    options: AnalysisConfig,
    *,
    card: ModelCard,
    tokenizer,
    masked_model: Callable[[], MaskedRuns],
    rollout_row: np.ndarray | None = None,
    random_state: int = 0,
) -> Explanation:
    """Attributions, flow and faithfulness for one traced example. `masked_model` makes the model
    as a function over masks (called only when attributions or faithfulness are asked for);
    `tokenizer` names classes of a model without labels; `rollout_row` is the example's rollout
    into the read position, which a build has already computed (`results.describe`)."""
    result = Explanation()
    read = 0 if card.read_position == "first" else trace.n_tokens - 1
    content = ~trace.special
    if rollout_row is None:
        rollout_row = read_row(rollout(trace.attentions), card.read_position)
    if options.flow and not trace.windows:
        if trace.n_tokens <= MAX_FLOW_TOKENS:
            flow = attention_flow(trace.attentions, target=read)
            result.flow = flow.tolist()
        else:
            result.skipped["flow"] = f"{trace.n_tokens} tokens; flow runs up to {MAX_FLOW_TOKENS}"
    players = int(content.sum())
    if trace.logits is None or not options.attributions and not options.faithfulness:
        return result
    units = attribution_units(
        trace.text,
        trace.offsets,
        trace.special,
        options.attribution_unit,
        max_tokens=options.max_attribution_tokens,
    )
    if units.kind == "token" and players > options.max_attribution_tokens:
        result.skipped["attributions"] = (
            f"{players} content tokens; token attributions run up to {options.max_attribution_tokens} "
            '(attribution_unit = "word", "sentence" or "auto" score longer texts)'
        )
        return result
    if not len(units):
        result.skipped["attributions"] = "no content tokens"
        return result
    model = masked_model()
    # every class's output of a coalition, kept: each game below is a column (or a difference of
    # two) of the same runs, and the estimators draw their coalitions from the seed, not from the
    # values, so other classes and the contrast add arithmetic, not model runs
    memo = VectorMemo(lambda masks: model.outputs(units.token_masks(masks, model.positions)))
    target = model.declaration.target_index
    value = memo.column(target)
    declared = {**model.declaration.to_dict(), "unit": units.kind}
    # effects smaller than this (in the output's units) are too small to matter: drawn neutral,
    # never named in the verdict
    declared["negligible"] = options.negligible * OUTPUT_RANGE[options.output]
    if units.kind != "token":
        declared["units"] = units.to_list(trace.text)
    if trace.windows:
        # the windows the trace ran, and how many of them its prediction reads (a causal
        # model's last one only: units wholly before it cannot move the prediction, and score 0)
        declared["windows"] = len(trace.windows)
        declared["windows_read"] = len(model.windows)
    # the attention views ranked over the same units: the attention mass landing on each
    views = {"rollout": np.asarray(rollout_row), "raw_attention": raw_attention(trace, card.read_position)}
    if result.flow is not None:
        views["flow"] = np.asarray(result.flow)
    rankings = {name: units.reduce(row) for name, row in views.items()}
    k = len(units)
    for name, method in asked_methods(options.attributions):
        scores = method(value, k, options, link=_link(options.output), random_state=random_state)
        result.attributions[name] = _entry(trace, units, scores, declared)
        rankings[name] = scores.values
    if "occlusion" in rankings:
        for name, scores in rankings.items():
            if name != "occlusion":
                result.agreement[name] = spearman(scores, rankings["occlusion"])
    explain_others(result, memo, card, tokenizer, trace, options, units, declared, random_state)
    if options.faithfulness:
        for name, scores in rankings.items():
            result.faithfulness[name] = faithfulness(value, scores).to_dict()
        result.faithfulness["random"] = random_faithfulness(value, k, random_state=random_state).to_dict()
    result.model_runs = model.rows
    return result


def explain_others(
    result: Explanation,
    memo: VectorMemo,
    card: ModelCard,
    tok,
    trace: Trace,
    options: AnalysisConfig,
    units: Units,
    declared: dict,
    random_state: int,
) -> None:
    """The other explained classes' attributions, and the contrast of the predicted class with the
    runner-up, played on the coalitions the predicted class's games already ran."""
    classes = explained_classes(options.explain_classes, np.asarray(trace.logits), list(card.labels))
    if len(classes) < 2:
        return
    methods = asked_methods(options.attributions)
    players = len(units)
    link = _link(options.output)
    for c in classes[1:]:
        label = _class_label(card, tok, c)
        facts = {**declared, "target": label}
        result.classes[label] = {
            name: _entry(
                trace,
                units,
                method(memo.column(c), players, options, link=link, random_state=random_state),
                facts,
            )
            for name, method in methods
        }
    a, b = classes[0], classes[1]
    label_a, label_b = _class_label(card, tok, a), _class_label(card, tok, b)
    output = f"{options.output} difference"
    contrast: dict = {"a": label_a, "b": label_b, "output": output}

    def difference(masks: np.ndarray) -> np.ndarray:
        rows = memo.rows(masks)
        return rows[:, a] - rows[:, b]

    facts = {**declared, "output": output, "target": f"{label_a} - {label_b}"}
    for name, method in methods:
        # a difference of two probabilities is no probability: its games use the identity link
        scores = method(difference, players, options, link="identity", random_state=random_state)
        contrast[name] = _entry(trace, units, scores, facts)
    result.contrast = contrast


def _link(output: str) -> str:
    """What the estimators fit on: a probability's logit (a surrogate additive in it), else the
    output itself."""
    return "logit" if output == "probability" else "identity"


def _entry(trace: Trace, units: Units, scores: Attribution, declared: dict) -> dict:
    entry = {"values": _stated(trace, units, scores.values), **scores.facts, **declared}
    if scores.std_error is not None:
        entry["std_error"] = _stated(trace, units, scores.std_error)
    return entry
