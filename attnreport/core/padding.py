"""Token id rows padded into one batch: the shape the exported graph is checked on and run with.

The export checks the graph on a batch made here and the tracer runs batches made here, so
both pad the same way: on the right, with the attention mask marking the real tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, mask)``, both int64 ``[len(rows), longest]``: each row's ids then `pad_id`, and 1
    over each row's own tokens, 0 over its padding."""
    if not rows:
        raise ValueError("pad_batch needs at least one row")
    n = max(len(row) for row in rows)
    ids = np.full((len(rows), n), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), n), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask
