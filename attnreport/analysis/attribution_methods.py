"""The attribution methods, by the name a config uses: one registry for both kinds of report.

A method scores the players of one game: a value function over coalition masks (`ValueFunction`,
``[m, p]`` booleans -> ``[m]``) that the caller hands in. A classifier's explanation
(`explain.explain`) plays a class's output (or the difference of two); an answer's
(`answer_attribution.explain_answer`) plays each answer token's log-probability or probability,
the whole answer's and each contrast's. Neither path keeps methods of its own: each runs the
entries of `METHODS` on its own value functions, shared through `VectorMemo`, so a coalition
reaches the model once whatever the methods and the games.

Also here: the span of each output kind (`OUTPUT_RANGE`), which `[analysis] negligible` is a
fraction of and whose half is where an attribution's colour saturates on every page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from attnreport.analysis.shapley import ValueFunction, occlusion, shapley
from attnreport.core.config import AnalysisConfig

#: the span of each output an attribution is a share of: a probability runs from 0 to 1; a logit
#: has no bounds, and 10 (from -5 to 5) takes a two-class probability from 0.7% to 99.3%; a
#: log-probability 4 nats (a factor of e^4, about 55, in the token's probability).
#: `[analysis] negligible` is a fraction of it; an attribution's colour saturates at half of it
#: (`colour_scale_of`), fixed per output, so equal colours mean equal effects on every page
OUTPUT_RANGE = {"probability": 1.0, "logit": 10.0, "log_probability": 4.0}


def colour_scale_of(output: str) -> float:
    """Where an attribution of `output` is drawn in full colour: half the output's range (of 1 for
    an output without one, such as a difference)."""
    return 0.5 * OUTPUT_RANGE.get(output, 1.0)


@dataclass
class Attribution:
    """One method's scores of one game's players, and the facts report.json states beside them."""

    values: np.ndarray
    #: what the method says of itself (Shapley: exact, evaluations, estimator, efficiency gap...)
    facts: dict = field(default_factory=dict)
    #: per player, the standard error of a sampled estimate; None for exact or deterministic ones
    std_error: np.ndarray | None = None

    @property
    def exact(self) -> bool:
        return bool(self.facts.get("exact", True))


class AttributionMethod(Protocol):
    """(value function, players, options; the link the estimator fits on, the seed) -> scores."""

    def __call__(
        self, value: ValueFunction, players: int, options: AnalysisConfig, *, link: str, random_state: int
    ) -> Attribution: ...


def _shapley(
    value: ValueFunction, players: int, options: AnalysisConfig, *, link: str, random_state: int
) -> Attribution:
    sh = shapley(
        value,
        players,
        method=options.shapley_method,
        max_exact=options.max_exact,
        evaluations_per_player=options.evaluations_per_token,
        permutations=options.permutations,
        link=link,
        runs=options.lasso_runs,
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


def _occlusion(
    value: ValueFunction, players: int, options: AnalysisConfig, *, link: str, random_state: int
) -> Attribution:
    return Attribution(values=occlusion(value, players))


#: the attribution methods by the name `[analysis] attributions` and `[generate] attributions`
#: use, in the order they run: Shapley first, because Kernel SHAP and the surrogate evaluate
#: every leave-one-out coalition anyway (permutations some), so occlusion then costs no model run
METHODS: dict[str, AttributionMethod] = {"shapley": _shapley, "occlusion": _occlusion}


def asked_methods(names) -> list[tuple[str, AttributionMethod]]:
    """The methods of `names`, in the registry's order (the order they run and are reported in)."""
    return [(name, method) for name, method in METHODS.items() if name in names]


class VectorMemo:
    """Every quantity of every coalition asked so far; each coalition reaches the model once.

    `value(masks)` returns ``[m, C]`` (a classifier's outputs, or the answer's columns
    `answer_attribution.answer_columns` makes; `columns` is C when the caller plays every
    column); `column(j)` is the scalar value function of quantity j that a method plays.
    """

    def __init__(self, value, columns: int | None = None) -> None:
        self.value = value
        self.columns = columns
        self.memo: dict[bytes, np.ndarray] = {}

    def rows(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        keys = [row.tobytes() for row in np.packbits(masks, axis=1)]
        missing = {}
        for key, row in zip(keys, masks, strict=True):
            if key not in self.memo and key not in missing:
                missing[key] = row
        if missing:
            got = self.value(np.stack(list(missing.values())))
            self.memo.update(zip(missing.keys(), got, strict=True))
        return np.stack([self.memo[k] for k in keys])

    def column(self, j: int):
        return lambda masks: self.rows(masks)[:, j]

    @property
    def evaluations(self) -> int:
        return len(self.memo)
