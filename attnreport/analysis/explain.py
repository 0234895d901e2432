"""Everything computed for one example: attributions, flow, and how faithful each view is.

The model is reached only through a value function over masks (see
`attnreport.trace.evaluate.MaskedModel`); every coalition is evaluated once, batched,
and shared between methods through `MemoValue`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from attnreport.analysis.faithfulness import faithfulness, random_faithfulness
from attnreport.analysis.flow import MAX_FLOW_TOKENS, attention_flow
from attnreport.analysis.rollout import read_row, rollout
from attnreport.analysis.shapley import occlusion, shapley
from attnreport.core.config import AnalysisConfig
from attnreport.core.trace import Trace
from attnreport.trace.evaluate import MaskedModel


class MemoValue:
    """Wraps a value function so that no coalition is ever evaluated twice."""

    def __init__(self, value) -> None:
        self.value = value
        self.memo: dict[bytes, float] = {}

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        keys = [row.tobytes() for row in np.packbits(masks, axis=1)]
        missing = {}
        for key, row in zip(keys, masks, strict=True):
            if key not in self.memo and key not in missing:
                missing[key] = row
        if missing:
            values = self.value(np.stack(list(missing.values())))
            self.memo.update(zip(missing.keys(), (float(v) for v in values), strict=True))
        return np.array([self.memo[k] for k in keys])

    @property
    def evaluations(self) -> int:
        return len(self.memo)


@dataclass
class Explanation:
    #: method -> {"values": one per token (0 for special tokens), plus the method's facts}
    attributions: dict[str, dict] = field(default_factory=dict)
    #: method -> comprehensiveness / sufficiency; "random" is the bar to clear
    faithfulness: dict[str, dict] = field(default_factory=dict)
    #: attention flow into the read position, one value per token; None when too long
    flow: list[float] | None = None
    #: Spearman correlation of each view's token ranking with occlusion (blank-out) importance
    agreement: dict[str, float | None] = field(default_factory=dict)
    #: why something was not computed
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "attributions": self.attributions,
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


@dataclass
class Attribution:
    """One method's scores of the content tokens, and the facts report.json states beside them."""

    values: np.ndarray
    facts: dict = field(default_factory=dict)
    std_error: np.ndarray | None = None


#: a method: (value function, content tokens, options, random state) -> its scores
AttributionMethod = Callable[[MemoValue, int, AnalysisConfig, int], Attribution]


def _shapley(value: MemoValue, players: int, options: AnalysisConfig, random_state: int) -> Attribution:
    sh = shapley(
        value,
        players,
        method=options.shapley_method,
        max_exact=options.max_exact,
        evaluations_per_player=options.evaluations_per_token,
        permutations=options.permutations,
        link="logit" if options.output == "probability" else "identity",
        random_state=random_state,
    )
    facts = {
        "exact": bool(sh.exact),
        "evaluations": int(sh.evaluations),
        "method": sh.method,
        "efficiency_gap": sh.efficiency_gap,
        "f_input": sh.f_input,
        "f_baseline": sh.f_baseline,
    }
    return Attribution(values=sh.values, facts=facts, std_error=sh.std_error)


def _occlusion(value: MemoValue, players: int, options: AnalysisConfig, random_state: int) -> Attribution:
    return Attribution(values=occlusion(value, players))


#: the token attribution methods by the name a config uses, in the order they run: Shapley
#: first, because Kernel SHAP and the surrogate evaluate every leave-one-out coalition anyway
#: (permutations some), so occlusion then costs no model run (`MemoValue`)
ATTRIBUTIONS: dict[str, AttributionMethod] = {"shapley": _shapley, "occlusion": _occlusion}


def explain(
    tracer,
    trace: Trace,
    options: AnalysisConfig,
    *,
    rollout_row: np.ndarray | None = None,
    random_state: int = 0,
) -> Explanation:
    """Attributions, flow and faithfulness for one traced example. `rollout_row` is its rollout
    into the read position, which a build has already computed (`results.describe`)."""
    card = tracer.card
    result = Explanation()
    read = 0 if card.read_position == "first" else trace.n_tokens - 1
    content = ~trace.special
    if rollout_row is None:
        rollout_row = read_row(rollout(trace.attentions), card.read_position)
    rankings = {
        "rollout": np.asarray(rollout_row)[content],
        "raw_attention": raw_attention(trace, card.read_position)[content],
    }
    if options.flow and not trace.windows:
        if trace.n_tokens <= MAX_FLOW_TOKENS:
            flow = attention_flow(trace.attentions, target=read)
            result.flow = flow.tolist()
            rankings["flow"] = flow[content]
        else:
            result.skipped["flow"] = f"{trace.n_tokens} tokens; flow runs up to {MAX_FLOW_TOKENS}"
    players = int(content.sum())
    if trace.logits is None or not options.attributions and not options.faithfulness:
        return result
    if trace.windows or players > options.max_attribution_tokens or players == 0:
        why = f"{players} content tokens; attributions run up to {options.max_attribution_tokens}"
        result.skipped["attributions"] = "run in windows" if trace.windows else why
        return result
    model = MaskedModel(tracer, trace, output=options.output)
    value = MemoValue(model)
    declared = model.declaration.to_dict()
    for name, method in ATTRIBUTIONS.items():
        if name not in options.attributions:
            continue
        scores = method(value, players, options, random_state)
        entry = {"values": _per_token(trace, scores.values), **scores.facts, **declared}
        if scores.std_error is not None:
            entry["std_error"] = _per_token(trace, scores.std_error)
        result.attributions[name] = entry
        rankings[name] = scores.values
    if "occlusion" in rankings:
        for name, scores in rankings.items():
            if name != "occlusion":
                result.agreement[name] = spearman(scores, rankings["occlusion"])
    if options.faithfulness:
        for name, scores in rankings.items():
            result.faithfulness[name] = faithfulness(value, scores).to_dict()
        result.faithfulness["random"] = random_faithfulness(
            value, players, random_state=random_state
        ).to_dict()
    return result
