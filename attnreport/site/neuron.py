"""The neuron view's page data: one example's queries and keys, or why the page has none.

The page draws, for the chosen layer, head and query, the query and each key vector, their
elementwise product and q·k·scale beside the model's own attention (`neuronview.js`). The
vectors are the ones the scores were made from (`ModelCard.qk`), so the softmax of the shown
scores over the keys the query may read is the attention shown; the page does not recompute
the attention, so it keeps whatever the model masked.
"""

from __future__ import annotations

import numpy as np

from attnreport.core.modelcard import ModelCard
from attnreport.core.trace import Trace
from attnreport.site.encode import packed_signed


def skipped_reason(trace: Trace) -> str:
    """Why a --with-qk model's trace holds no queries and keys, in a sentence for the page."""
    if trace.windows:
        return (
            f"it was run in {len(trace.windows)} overlapping windows, so no one run holds "
            f"the queries and keys of all its tokens"
        )
    return (
        f"it has {trace.n_tokens} tokens, more than [model] neuron_view_max_tokens: "
        f"raise it to keep their queries and keys"
    )


def neuron_data(trace: Trace, card: ModelCard) -> dict | None:
    """The neuron view's block of an example page; None for an export without queries and keys."""
    qk = card.qk
    if qk is None:
        return None
    if trace.queries is None:
        return {"skipped": skipped_reason(trace)}
    if not (np.all(np.isfinite(trace.queries)) and np.all(np.isfinite(trace.keys))):
        return {"skipped": "the model gave queries or keys that are not finite"}
    return {
        "queries": packed_signed(trace.queries),
        "keys": packed_signed(trace.keys),
        "scales": list(qk.scales),
        "head_dim": qk.head_dim,
        "kv_heads": qk.kv_heads,
        "causal": card.causal,
    }
