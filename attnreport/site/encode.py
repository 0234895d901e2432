"""Data for pages: deterministic JSON that is safe inside <script type="application/json">,
and compact quantised attention.

Numbers are rounded to a fixed number of significant digits and keys sorted, so the same inputs give the
same bytes. Non-finite numbers become null and are counted, so a page can flag them.
"""

from __future__ import annotations

import base64
import json
import math
import zlib

import numpy as np

#: significant digits kept: enough for float32 round trips of probabilities, compact in JSON
DIGITS = 7
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


class NonFinite:
    """Counts the non-finite numbers met while cleaning a value."""

    def __init__(self) -> None:
        self.count = 0


def clean(value, nonfinite: NonFinite | None = None):
    """Plain JSON types only: numpy scalars and arrays converted, floats rounded, NaN/inf -> None."""
    if isinstance(value, dict):
        return {str(k): clean(v, nonfinite) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v, nonfinite) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist(), nonfinite)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        x = float(value)
        if not math.isfinite(x):
            if nonfinite is not None:
                nonfinite.count += 1
            return None
        x = float(f"{x:.{DIGITS}g}")
        return 0.0 if x == 0 else x
    return value


def dumps(value) -> str:
    """Deterministic JSON text (sorted keys, fixed precision)."""
    return json.dumps(
        clean(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def script_json(value) -> str:
    """JSON that can sit inside a <script type="application/json"> element without closing it."""
    text = json.dumps(clean(value), sort_keys=True, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    for char, escape in _SCRIPT_ESCAPES.items():
        text = text.replace(char, escape)
    return text


def packed_unit(weights: np.ndarray) -> dict:
    """Weights in [0, 1] as uint8, deflated, base64: the page's compact attention block.

    Attention rows are mostly near-zero, so deflate shrinks them 2-4x; the browser inflates
    them with DecompressionStream, which needs no library and works from file://.
    """
    w = np.asarray(weights, dtype=np.float64)
    q = np.rint(np.clip(w, 0.0, 1.0) * 255.0).astype(np.uint8)
    return {
        "encoding": "uint8-deflate-base64",
        "scale": 1 / 255,
        "shape": list(w.shape),
        "data": base64.b64encode(zlib.compress(q.tobytes(), 9)).decode("ascii"),
    }
