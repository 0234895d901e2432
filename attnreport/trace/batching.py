"""Which prompts run together: by length and by a memory budget, not by a count alone.

Prompts are padded to the longest of their batch, and a batch's prefill records every layer's
attention rows for a chunk of positions over all the keys, so three prompts of 66, 517 and 2,018
tokens run together cost three times the longest one's memory: killed at 13 GB on a 0.5B model
with a count of eight as the only limit. Sorted by length, a batch grows while it stays within
`batch_size` prompts and within `DEFAULT_BATCH_BYTES` of estimated peak memory (`RowCost`); a
prompt too long for the budget runs alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: estimated peak memory of one batch's run (bytes); a prompt over it runs alone
DEFAULT_BATCH_BYTES = 1 << 30


@dataclass(frozen=True)
class RowCost:
    """What one prompt of ``length`` tokens holds during its prefill chunk (float32, bytes): the
    chunk's attention rows over every key (``L·H·q·n``), its hidden states (``(L + 1)·q·H·d_h``),
    its logits (``q·V``) and the KV cache (``2·L·kv·d_h·n``), with ``q = min(chunk, n)``."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    chunk: int

    def __call__(self, length: int) -> int:
        q = min(self.chunk, length)
        attention = self.layers * self.heads * q * length
        hidden = (self.layers + 1) * q * self.heads * self.head_dim
        logits = q * self.vocab
        cache = 2 * self.layers * self.kv_heads * self.head_dim * length
        return 4 * (attention + hidden + logits + cache)


def plan_batches(lengths: Sequence[int], *, batch_size: int, budget: int, cost: RowCost) -> list[list[int]]:
    """Indices into `lengths`, grouped: shortest first, each batch at most `batch_size` prompts
    whose padded cost (their count times the longest one's `cost`) is within `budget`."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: (lengths[k], k)):
        if current and (len(current) + 1 > batch_size or (len(current) + 1) * cost(lengths[i]) > budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
