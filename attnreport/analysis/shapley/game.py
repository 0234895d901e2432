"""The game every estimator plays: a value function over coalitions, and what an estimate holds.

The caller declares the game as a value function: it receives a boolean mask array ``[m, p]``
(True = player present) and returns one float per row. Every estimator calls it through
`evaluate`, which refuses a wrong shape or a non-finite value before it can poison the values.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

ValueFunction = Callable[[np.ndarray], np.ndarray]

#: enumeration needs 2^p coalitions and int64 bit codes: beyond this, sample
MAX_ENUMERABLE = 30


@dataclass
class ShapleyResult:
    #: one Shapley value per player, ``[p]``
    values: np.ndarray
    #: v(∅): the value with every player absent (report.json's name)
    f_baseline: float
    #: v(N): the value with every player present
    f_input: float
    exact: bool
    #: distinct coalitions evaluated (calls to the model, counted in rows)
    evaluations: int
    #: standard error of each value, ``[p]``; None when exact
    std_error: np.ndarray | None
    #: "exact-enumeration", "kernel-shap-paired", "antithetic-permutation", "<link>-additive-surrogate"
    #: or "lasso-surrogate"
    method: str
    #: permutations sampled (antithetic ones included); None when exact
    permutations: int | None = None
    #: sum(values) − (f_input − f_baseline): zero up to float rounding when efficiency holds
    efficiency_gap: float = field(init=False)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        self.f_baseline, self.f_input = float(self.f_baseline), float(self.f_input)
        self.efficiency_gap = float(self.values.sum() - (self.f_input - self.f_baseline))
        if self.values.ndim != 1:
            raise ValueError(f"values must be [p], got {list(self.values.shape)}")
        if self.std_error is not None:
            self.std_error = np.asarray(self.std_error, dtype=np.float64)
            if self.std_error.shape != self.values.shape:
                raise ValueError(
                    f"std_error must match values {list(self.values.shape)}, got {list(self.std_error.shape)}"
                )

    def to_dict(self) -> dict:
        return {
            "values": self.values.tolist(),
            "f_baseline": self.f_baseline,
            "f_input": self.f_input,
            "exact": bool(self.exact),
            "evaluations": int(self.evaluations),
            "std_error": None if self.std_error is None else self.std_error.tolist(),
            "efficiency_gap": float(self.efficiency_gap),
            "method": self.method,
            "permutations": self.permutations,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ShapleyResult:
        return cls(**{k: v for k, v in data.items() if k != "efficiency_gap"})


def evaluate(value: ValueFunction, masks: np.ndarray) -> np.ndarray:
    """One call to the value function, checked: a wrong shape or a NaN would poison every value."""
    result = np.asarray(value(masks), dtype=np.float64)
    if result.shape != (len(masks),):
        msg = (
            f"value function returned shape {list(result.shape)} for masks of shape "
            f"{list(masks.shape)}; it must return one value per row, shape [{len(masks)}]"
        )
        raise ValueError(msg)
    if not np.isfinite(result).all():
        bad = int((~np.isfinite(result)).sum())
        raise ValueError(f"value function returned {bad} non-finite values for {len(masks)} coalitions")
    return result


def evaluate_distinct(value: ValueFunction, masks: np.ndarray, batch: int) -> tuple[np.ndarray, int]:
    """v of every row of ``masks``, calling ``value`` once per distinct row, in first-seen order."""
    keys = np.packbits(masks, axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rows = masks[first[order]]
    v_rows = np.empty(len(rows))
    for start in range(0, len(rows), batch):
        v_rows[start : start + batch] = evaluate(value, rows[start : start + batch])
    v_distinct = np.empty(len(rows))
    v_distinct[order] = v_rows
    return v_distinct[inverse.reshape(-1)], len(rows)


def check_players(players: int) -> int:
    p = operator.index(players)
    if p < 1:
        raise ValueError(f"players must be at least 1, got {p}")
    return p


def check_positive(number: int, name: str) -> int:
    n = operator.index(number)
    if n < 1:
        raise ValueError(f"{name} must be at least 1, got {n}")
    return n
