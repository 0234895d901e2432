"""Attention flow: our exact solver against networkx max-flow per (source, target) pair.

    python benchmarks/flow.py [--sizes 16 32 64 128] [--budget 15] [--repeats 3]

Random realistic attention (softmax of N(0, 3²) logits), 6 layers × 12 heads, one target
(position 0, the read position of an encoder). For each length n it times our full row
(all n sources) and networkx's ``maximum_flow_value`` on the explicit (L+1)·n-node graph,
built once, pair by pair; it checks that both agree on every pair it ran. networkx gets
``--budget`` seconds per length: past that its per-pair time is extrapolated to the row
(the table says from how many pairs). ``edmonds_karp``, the flow function of the authors'
notebook, is timed the same way up to ``--ek-max-n`` tokens. About a minute in all.
"""

from __future__ import annotations

import argparse
import time

import networkx as nx
import numpy as np

from attnreport.analysis.flow import MAX_FLOW_TOKENS, _augmented, attention_flow

LAYERS, HEADS = 6, 12


def realistic_attention(n: int, rng: np.random.Generator, *, causal: bool = False) -> np.ndarray:
    logits = rng.normal(scale=3.0, size=(LAYERS, HEADS, n, n))
    if causal:
        logits = np.where(np.tril(np.ones((n, n), dtype=bool)), logits, -np.inf)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def explicit_graph(layers: np.ndarray) -> nx.DiGraph:
    """The generic construction: every node (l, i), every edge with its capacity."""
    graph = nx.DiGraph()
    for depth, layer in enumerate(layers, start=1):
        for i in range(layer.shape[0]):
            for j in range(layer.shape[1]):
                graph.add_edge((depth - 1, j), (depth, i), capacity=float(layer[i, j]))
    return graph


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def networkx_pairs(graph, n_layers, n, target, budget, flow_func=None):
    """Max-flow values for sources 0, 1, … until all n are done or ``budget`` seconds pass."""
    kwargs = {} if flow_func is None else {"flow_func": flow_func}
    values, start = [], time.perf_counter()
    for j in range(n):
        values.append(nx.maximum_flow_value(graph, (0, j), (n_layers, target), **kwargs))
        if time.perf_counter() - start > budget:
            break
    return (time.perf_counter() - start) / len(values), np.array(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--budget", type=float, default=15.0, help="seconds of networkx per length")
    parser.add_argument("--ek-max-n", type=int, default=64, help="time edmonds_karp up to this length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    target = 0

    print(f"attention flow, {LAYERS} layers x {HEADS} heads, one target, all n sources (times in s)")
    header = (
        f"{'n':>4} {'ours row':>9} {'nx/pair':>8} {'nx row':>8} {'pairs':>7} {'ratio':>7}"
        f" {'EK/pair':>8} {'EK row':>8} {'ratio':>8} {'max|diff|':>10}"
    )
    print(header)
    for n in args.sizes:
        attentions = realistic_attention(n, rng)
        ours_time, ours = best_time(lambda a=attentions: attention_flow(a, target=target), args.repeats)
        start = time.perf_counter()
        graph = explicit_graph(_augmented(attentions, 0.5))
        build = time.perf_counter() - start
        per_pair, reference = networkx_pairs(graph, LAYERS, n, target, args.budget)
        nx_row = build + n * per_pair
        diff = np.abs(ours[: reference.size] - reference).max()
        ek = "-", "-", "-"
        if n <= args.ek_max_n:
            ek_pair, ek_values = networkx_pairs(
                graph, LAYERS, n, target, args.budget / 2, nx.algorithms.flow.edmonds_karp
            )
            diff = max(diff, np.abs(ours[: ek_values.size] - ek_values).max())
            ek_row = build + n * ek_pair
            ek = f"{ek_pair:.4f}", f"{ek_row:.1f}", f"{ek_row / ours_time:.0f}x"
        pairs = f"{reference.size}/{n}" + ("" if reference.size == n else "*")
        print(
            f"{n:>4} {ours_time:>9.4f} {per_pair:>8.4f} {nx_row:>8.2f} {pairs:>7}"
            f" {nx_row / ours_time:>6.0f}x {ek[0]:>8} {ek[1]:>8} {ek[2]:>8} {diff:>10.1e}"
        )
    print("nx: networkx maximum_flow_value, default preflow_push; EK: its edmonds_karp (authors' notebook)")
    print("row = graph build + n x per-pair time; * = per-pair time from that many pairs, extrapolated")

    n = max(args.sizes)
    causal = realistic_attention(n, rng, causal=True)
    causal_time, _ = best_time(lambda: attention_flow(causal, target=n - 1), args.repeats)
    print(f"causal mask, n={n}, target = last token: ours {causal_time:.4f} s (pruning to j <= i <= t)")
    at_limit = realistic_attention(MAX_FLOW_TOKENS, rng)
    limit_time, _ = best_time(lambda: attention_flow(at_limit, target=0), 1)
    print(f"MAX_FLOW_TOKENS = {MAX_FLOW_TOKENS}: one row takes {limit_time:.2f} s per example")


if __name__ == "__main__":
    main()
