"""An `AnswerExplanation` as plain JSON and back, so the content cache can keep it.

An answer's attributions cost one teacher-forced decoder run per coalition: a rebuild (a new
theme, a template change) should not pay them again. The cache stores what `explain_answer`
returned, exactly: arrays keep their dtype and shape, floats go through JSON's shortest
round-trip form, so a build from the cache writes the same bytes as the build that filled it.
Values that JSON cannot hold (NaN or infinite, from a broken model) make `to_dict` raise
`ValueError`, and the caller leaves that answer uncached.
"""

from __future__ import annotations

import json
import math

import numpy as np

from attnreport.analysis.answer_attribution import AnswerExplanation, UnitAttribution
from attnreport.analysis.units import Units

#: bump when `explain_answer` changes what it returns for the same inputs: old entries then miss
ANSWER_EXPLANATION_VERSION = 6

_ARRAYS = ("values", "answer", "contrasts", "requested", "std_error", "answer_std_error")


def _array(a: np.ndarray | None) -> dict | None:
    if a is None:
        return None
    a = np.asarray(a)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError("not finite: left uncached")
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.ravel().tolist()}


def _from_array(d: dict | None) -> np.ndarray | None:
    if d is None:
        return None
    return np.asarray(d["data"], dtype=np.dtype(d["dtype"])).reshape(d["shape"])


def _finite(value):
    """`value` (nested dicts, lists, numbers) checked finite and made plain Python."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    x = float(value)
    if not math.isfinite(x):
        raise ValueError("not finite: left uncached")
    return x


def _units(units: Units | None) -> dict | None:
    if units is None:
        return None
    return {
        "kind": units.kind,
        "spans": _array(units.spans),
        "members": [_array(m) for m in units.members],
        "n_tokens": units.n_tokens,
    }


def _from_units(d: dict | None) -> Units | None:
    if d is None:
        return None
    return Units(
        kind=d["kind"],
        spans=_from_array(d["spans"]),
        members=tuple(_from_array(m) for m in d["members"]),
        n_tokens=d["n_tokens"],
    )


def to_dict(e: AnswerExplanation) -> dict:
    """`e` as JSON-ready data, its dicts in their order (the methods' order is the report's: keep
    it when serialising, e.g. with `to_json`); raises ValueError when a value is not finite."""
    return {
        "version": ANSWER_EXPLANATION_VERSION,
        "units": _units(e.units),
        "output": e.output,
        "baseline": e.baseline,
        "foils": _array(e.foils),
        "requested": [[int(s), int(i), str(t)] for s, i, t in e.requested],
        "attributions": {
            name: {
                **{key: _array(getattr(a, key)) for key in _ARRAYS},
                "efficiency_gap": _finite(list(a.efficiency_gap)),
                "exact": bool(a.exact),
                "method": a.method,
            }
            for name, a in e.attributions.items()
        },
        "faithfulness": _finite(e.faithfulness),
        "token_faithfulness": _finite(e.token_faithfulness),
        "lds": _finite(e.lds),
        "lds_ablations": int(e.lds_ablations),
        "evaluations": int(e.evaluations),
        "skipped": list(e.skipped),
        "segments": list(e.segments),
    }


def from_dict(d: dict) -> AnswerExplanation:
    """The explanation `to_dict` made; raises KeyError or ValueError for an entry of another version."""
    if d.get("version") != ANSWER_EXPLANATION_VERSION:
        raise ValueError(f"answer explanation version {d.get('version')!r}")
    return AnswerExplanation(
        units=_from_units(d["units"]),
        output=d["output"],
        baseline=d["baseline"],
        foils=_from_array(d["foils"]),
        requested=[(s, i, t) for s, i, t in d["requested"]],
        attributions={
            name: UnitAttribution(
                **{key: _from_array(a[key]) for key in _ARRAYS},
                efficiency_gap=list(a["efficiency_gap"]),
                exact=a["exact"],
                method=a["method"],
            )
            for name, a in d["attributions"].items()
        },
        faithfulness=d["faithfulness"],
        token_faithfulness=d["token_faithfulness"],
        lds=d["lds"],
        lds_ablations=d["lds_ablations"],
        evaluations=d["evaluations"],
        skipped=list(d["skipped"]),
        segments=list(d["segments"]),
    )


def to_json(e: AnswerExplanation) -> str:
    """`to_dict` as JSON text, keys in their order (a store that sorts keys would reorder methods)."""
    return json.dumps(to_dict(e), allow_nan=False, separators=(",", ":"))


def from_json(text: str) -> AnswerExplanation:
    return from_dict(json.loads(text))
