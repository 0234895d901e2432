"""Sliding windows for texts longer than the model, and stitching their outputs back.

A window is a range of content tokens ``[start, stop)``; each is run with the special
tokens around it. Every token then takes its attention row and hidden states from one
*owner* window: the one in which it sits most centrally (encoders), or the earliest
one that holds it, where it sees the most context (causal models).
"""

from __future__ import annotations

import numpy as np


def plan_windows(n_content: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Cover ``n_content`` tokens with windows of ``size`` tokens sharing ``stride`` tokens."""
    if size < 1:
        raise ValueError(f"window size must be positive, got {size}")
    if n_content <= size:
        return [(0, n_content)]
    if not 0 <= stride < size:
        raise ValueError(f"stride must be in [0, {size}), got {stride}")
    step = size - stride
    windows = []
    start = 0
    while True:
        stop = min(start + size, n_content)
        windows.append((max(0, stop - size), stop))
        if stop >= n_content:
            return windows
        start += step


def owners(windows: list[tuple[int, int]], n_content: int, *, causal: bool) -> np.ndarray:
    """For each content token, the index of the window its outputs are taken from."""
    owner = np.full(n_content, -1, dtype=np.int64)
    best = np.full(n_content, np.inf)
    for k, (start, stop) in enumerate(windows):
        pos = np.arange(start, stop)
        if causal:
            score = np.where(owner[start:stop] < 0, 0.0, np.inf)
        else:
            score = np.abs(pos + 0.5 - (start + stop) / 2)
        better = score < best[start:stop]
        owner[start:stop][better] = k
        best[start:stop][better] = score[better]
    return owner


def stitch(
    parts: list[tuple[np.ndarray, np.ndarray]],
    windows: list[tuple[int, int]],
    n_prefix: int,
    n_suffix: int,
    *,
    causal: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Join per-window ``(attentions [L,H,m,m], hidden [L+1,m,d])`` into one text's arrays.

    Keys outside a query's owner window get weight 0, so each row still sums to 1.
    """
    n_content = windows[-1][1]
    n = n_prefix + n_content + n_suffix
    layers, heads = parts[0][0].shape[:2]
    states, _, d = parts[0][1].shape
    attn = np.zeros((layers, heads, n, n), dtype=np.float32)
    hidden = np.zeros((states, n, d), dtype=np.float32)
    owner = owners(windows, n_content, causal=causal)
    for k, ((a, h), (start, stop)) in enumerate(zip(parts, windows, strict=True)):
        width = stop - start
        # global position of each of the window's local positions
        glob = np.concatenate(
            [
                np.arange(n_prefix),
                n_prefix + np.arange(start, stop),
                n_prefix + n_content + np.arange(n_suffix),
            ]
        )
        local_owned = np.concatenate(
            [
                np.full(n_prefix, k == 0),
                owner[start:stop] == k,
                np.full(n_suffix, k == len(windows) - 1),
            ]
        )
        assert a.shape[-1] == n_prefix + width + n_suffix
        rows = np.flatnonzero(local_owned)
        attn[:, :, glob[rows][:, None], glob[None, :]] = a[:, :, rows, :]
        hidden[:, glob[rows]] = h[:, rows]
    return attn, hidden
