"""Batches by length and memory (`trace.batching`): a brute-force search agrees on small cases,
and three prompts of very different lengths no longer pad to the longest."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from attnreport.trace.batching import RowCost, plan_batches

QWEN_05B = RowCost(layers=24, heads=14, kv_heads=2, head_dim=64, vocab=151_936, chunk=256)


def test_the_issue_s_three_prompts_do_not_run_padded_together():
    """66, 517 and 2,018 tokens on Qwen2.5-0.5B's sizes with a 1 GiB budget: the two short ones
    together, the long one alone (padded together they would hold three times its memory)."""
    lengths = [2018, 66, 517]
    batches = plan_batches(lengths, batch_size=8, budget=1 << 30, cost=QWEN_05B)
    assert batches == [[1, 2], [0]]
    assert 3 * QWEN_05B(2018) > 1 << 30 > 2 * QWEN_05B(517)


def test_the_row_cost_is_the_sum_of_what_a_prefill_chunk_holds():
    cost = RowCost(layers=2, heads=3, kv_heads=1, head_dim=4, vocab=10, chunk=5)
    n = 7  # a chunk of 5 positions over 7 keys
    want = 4 * (2 * 3 * 5 * 7 + 3 * 5 * 3 * 4 + 5 * 10 + 2 * 2 * 1 * 4 * 7)
    assert cost(n) == want
    assert cost(3) == 4 * (2 * 3 * 3 * 3 + 3 * 3 * 3 * 4 + 3 * 10 + 2 * 2 * 1 * 4 * 3)


@pytest.mark.parametrize("seed", range(20))
def test_every_batch_keeps_both_limits_and_none_could_take_the_next_prompt(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 3000, size=rng.integers(1, 9)).tolist()
    batch_size, budget = int(rng.integers(1, 5)), int(rng.integers(1, 4)) * QWEN_05B(1000)
    batches = plan_batches(lengths, batch_size=batch_size, budget=budget, cost=QWEN_05B)
    flat = list(itertools.chain.from_iterable(batches))
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)  # shortest first, so little is padding
    for batch, after in zip(batches, batches[1:] + [None], strict=True):
        longest = max(lengths[i] for i in batch)
        assert len(batch) <= batch_size
        assert len(batch) == 1 or len(batch) * QWEN_05B(longest) <= budget
        if after is not None:  # greedy: the next prompt did not fit
            grown = len(batch) + 1
            assert grown > batch_size or grown * QWEN_05B(lengths[after[0]]) > budget
