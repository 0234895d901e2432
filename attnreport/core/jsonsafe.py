"""Plain, deterministic JSON values: what every stage hands on when results leave numpy.

Floats are rounded to a fixed number of significant digits, so the same inputs give the same
bytes whether a result was computed now or read back from the cache; non-finite numbers
become None and are counted, so a page can flag them.
"""

from __future__ import annotations

import math

import numpy as np

#: significant digits kept: enough for float32 round trips of probabilities, compact in JSON
DIGITS = 7


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
