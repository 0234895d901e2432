"""Attention flow, as Abnar & Zuidema (2020), "Quantifying Attention Flow in Transformers".

The model is read as a layered graph: node ``(l, i)`` is token ``i`` after layer ``l``
(``l = 0`` the input embeddings), and the edge ``(l-1, j) -> (l, i)`` has capacity
``Â_l[i, j]``, the residual-augmented matrix of rollout. The flow of input token ``j`` into
position ``t`` is the value of a maximum flow from ``(0, j)`` to ``(L, t)``: raw values in
``[0, 1]``, never below the rollout entry (rollout's path weights are themselves a feasible
flow). The authors' notebook divides each row by its sum before plotting; ``row / row.sum()``.

The authors' code runs networkx (``edmonds_karp``) per pair on the whole ``(L+1)·n``-node
graph. What we exploit instead:

* Only nodes on a path from the source to the sink can carry flow (the graph is a DAG):
  layer 0 is the source alone, layer L the sink alone, a causal mask keeps ``j ≤ i ≤ t``.
* One layer is a single edge, flow ``Â_1[t, j]``; two layers are disjoint two-edge paths,
  flow ``Σ_k min(Â_1[k, j], Â_2[t, k])``. Deeper graphs need a real max-flow solver.
* That solver is scipy's compiled Dinic (``scipy.sparse.csgraph.maximum_flow``), which
  takes int32 capacities. Scaling by ``2**30 / U`` and rounding down loses up to
  ``U / 2**30`` per edge of the cut, ~1e-7 in practice: not exact. So we *refine*: the
  integer flow, scaled back, is a feasible real flow; the cut the solver leaves behind
  bounds what the residual graph can still carry (``gap``), so the next round clips
  residual capacities at ``gap`` and scales by ``2**30 / gap``. Each round shrinks the gap
  by ~``edges-in-cut / 2**30``: two rounds (rarely three) bring it under ``1e-12 · value``.
  The value is a feasible flow's and the cut bounds it from above, so every value is
  certified to ``max(1e-12 · value, 1e-15)``.
* The CSR pattern of a graph shape is built once and shared by every source (and target)
  of that shape; small graphs are solved many per scipy call, as disjoint copies between
  a super-source and a super-sink.

Cost grows between n^2.5 and n^3 in the tokens, about linearly in layers, and a causal mask
halves it; ``python benchmarks/flow.py`` measures it against networkx's per-pair max-flow.
Reports compute the read row up to ``MAX_FLOW_TOKENS`` tokens, where it costs less than the
attributions a report already runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

#: Reports compute the flow of the read row for inputs up to this many tokens (module docstring).
MAX_FLOW_TOKENS = 128

_SCALE = 2**30 - 1  # every int32 capacity stays below this, so a pair of opposite arcs sums below 2**31
_REL_GAP = 1e-12  # stop refining once the certified gap is this small relative to the flow
_ABS_GAP = 1e-15  # ... or this small in absolute terms (float noise in summing capacities)
_MAX_ROUNDS = 8
_OPEN = 2**31 - 1  # the super-source and super-sink arcs: never the bottleneck
_BATCH_ARCS = 2**16  # arcs per scipy call when small graphs are batched (measured best)


def attention_flow(attentions: np.ndarray, *, target: int, residual: float = 0.5) -> np.ndarray:
    """``attentions [L, H, n, n]`` -> ``[n]``: max flow from each input token into position ``target``."""
    layers = _augmented(attentions, residual)
    n = layers.shape[-1]
    t = _check_target(target, n)
    return _flow_row(layers, t)


def attention_flow_matrix(attentions: np.ndarray, *, residual: float = 0.5) -> np.ndarray:
    """``attentions [L, H, n, n]`` -> ``[n, n]``; row ``t`` is ``attention_flow(target=t)``."""
    layers = _augmented(attentions, residual)
    return np.stack([_flow_row(layers, t) for t in range(layers.shape[-1])])


def _augmented(attentions: np.ndarray, residual: float) -> np.ndarray:
    """Per layer ``residual·I + (1 − residual)·mean over heads``, rows renormalised, as rollout does."""
    attentions = np.asarray(attentions, dtype=np.float64)
    if attentions.ndim != 4 or attentions.shape[-1] != attentions.shape[-2] or 0 in attentions.shape:
        raise ValueError(f"attentions must be [L, H, n, n] with no empty axis, got {list(attentions.shape)}")
    if not np.isfinite(attentions).all() or (attentions < 0).any():
        raise ValueError(
            f"attentions {list(attentions.shape)} must be finite and non-negative (they are capacities)"
        )
    if not 0.0 <= residual <= 1.0:
        raise ValueError(f"residual must be in [0, 1], got {residual}")
    n = attentions.shape[-1]
    eye = np.eye(n)
    layers = residual * eye + (1.0 - residual) * attentions.mean(axis=1)
    sums = layers.sum(axis=-1, keepdims=True)
    if (sums <= 0).any():
        layer, row = np.argwhere(sums[..., 0] <= 0)[0]
        raise ValueError(
            f"attentions {list(attentions.shape)}: layer {layer}, query {row} has no attention to "
            "renormalise (all zeros with residual=0)"
        )
    return layers / sums


def _check_target(target: int, n: int) -> int:
    if not isinstance(target, int | np.integer) or isinstance(target, bool):
        raise TypeError(f"target must be an int, got {type(target).__name__}")
    if not -n <= target < n:
        raise ValueError(f"target {target} is out of range for {n} tokens")
    return int(target) % n


def _flow_row(layers: np.ndarray, t: int) -> np.ndarray:
    """Flow from every source into ``(L, t)``; closed forms for one and two layers."""
    n_layers, n, _ = layers.shape
    if n_layers == 1:
        return layers[0, t].copy()
    if n_layers == 2:
        # Each middle token k is its own path j -> k -> t: disjoint, so the bottlenecks add up.
        return np.minimum(layers[0], layers[1, t][:, None]).sum(axis=0)
    out = np.zeros(n)
    positive = layers > 0
    to_sink = None if positive.all() else _reaches_sink(positive, t)
    sources, problems, arcs = [], [], 0
    for j in range(n):
        blocks = _blocks(layers, j, t) if to_sink is None else _pruned_blocks(layers, positive, to_sink, j, t)
        if blocks is None:
            continue  # no path from j to t: the flow is 0
        sources.append(j)
        problems.append(blocks)
        arcs += 2 * sum(b.size for b in blocks)
        if arcs >= _BATCH_ARCS:
            out[sources] = _batched_max_flow(problems)[0]
            sources, problems, arcs = [], [], 0
    if problems:
        out[sources] = _batched_max_flow(problems)[0]
    return out


def _blocks(layers: np.ndarray, j: int, t: int) -> list[np.ndarray]:
    """Capacity blocks ``W_l [p_l, p_(l-1)]`` from ``(0, j)`` to ``(L, t)``, source first: views, no copy."""
    return [layers[0][:, j : j + 1], *layers[1:-1], layers[-1][t : t + 1]]


def _reaches_sink(positive: np.ndarray, t: int) -> list[np.ndarray]:
    """Per middle layer 1..L-1, which tokens have a path of positive capacity into ``(L, t)``."""
    reaches = [positive[-1, t]]
    for layer in positive[-2:0:-1]:
        reaches.append(layer[reaches[-1]].any(axis=0))
    return reaches[::-1]


def _pruned_blocks(
    layers: np.ndarray, positive: np.ndarray, to_sink: list[np.ndarray], j: int, t: int
) -> list[np.ndarray] | None:
    """The blocks restricted to nodes on a path from ``(0, j)`` to ``(L, t)``; None if there is none.

    Only such nodes can carry flow (the graph is a DAG): a causal mask keeps ``j ≤ i ≤ t``.
    """
    index = [np.array([j])]
    reached = positive[0, :, j]
    for depth in range(1, len(layers)):
        keep = reached & to_sink[depth - 1]
        if not keep.any():
            return None
        index.append(np.flatnonzero(keep))
        reached = positive[depth][:, keep].any(axis=1)
    index.append(np.array([t]))
    return [layers[d][np.ix_(index[d + 1], index[d])] for d in range(len(layers))]


@dataclass(frozen=True)
class _Pattern:
    """CSR pattern of a layered graph holding every arc and its reverse, sorted by column."""

    size: int  # nodes; the source is 0 and the sink size - 1
    indptr: np.ndarray
    indices: np.ndarray
    forward: np.ndarray  # [E] CSR position of edge e's arc
    backward: np.ndarray  # [E] CSR position of its reverse arc
    tail: np.ndarray  # [E] node ids
    head: np.ndarray


@lru_cache(maxsize=64)
def _pattern(sizes: tuple[int, ...]) -> _Pattern:
    """The pattern for these layer sizes; one shape serves every source of a dense graph.

    Nodes are numbered layer by layer (source 0, sink last); edges block by block, each
    block row-major like its ``W_l``.
    """
    starts = np.concatenate([[0], np.cumsum(sizes)])
    tails, heads = [], []
    for k in range(len(sizes) - 1):
        head, tail = np.meshgrid(np.arange(sizes[k + 1]), np.arange(sizes[k]), indexing="ij")
        tails.append(starts[k] + tail.ravel())
        heads.append(starts[k + 1] + head.ravel())
    tail, head = np.concatenate(tails), np.concatenate(heads)
    size = int(starts[-1])
    rows = np.concatenate([tail, head])  # the arcs, then their reverses
    cols = np.concatenate([head, tail])
    order = np.argsort(rows * size + cols, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    small = np.int32  # patterns are cached: keep them lean
    return _Pattern(
        size=size,
        indptr=np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=size))]).astype(small),
        indices=cols[order].astype(small),
        forward=position[: tail.size].astype(small),
        backward=position[tail.size :].astype(small),
        tail=tail.astype(small),
        head=head.astype(small),
    )


@dataclass(frozen=True)
class _Batch:
    """Disjoint copies of several patterns between a super-source and a super-sink.

    Copies share no node, so one max flow of the union is a max flow of each copy, and the
    flow on the arc super-source -> copy k is copy k's value: one scipy call for many sources.
    Layout: the super-source row, then each copy's rows (its source row led by the reverse
    arc to the super-source, its sink row closed by the arc to the super-sink), then the
    super-sink row; every row stays sorted.
    """

    size: int
    indptr: np.ndarray
    indices: np.ndarray
    base: np.ndarray  # [B] where copy k's own CSR data starts
    offset: np.ndarray  # [B] node id of copy k's source


@lru_cache(maxsize=4)
def _batch(shapes: tuple[tuple[int, ...], ...]) -> _Batch:
    """The batch of the patterns of these layer sizes; cached, since dense rows repeat it."""
    patterns = [_pattern(sizes) for sizes in shapes]
    count = len(patterns)
    sizes = np.array([p.size for p in patterns])
    offset = 1 + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    super_sink = 1 + int(sizes.sum())
    nnz = np.array([p.indices.size for p in patterns])
    base = count + 1 + np.concatenate([[0], np.cumsum(nnz + 2)[:-1]])
    indices, lengths = [offset], [np.array([count])]
    for p, o in zip(patterns, offset, strict=True):
        indices += [np.array([0]), p.indices.astype(np.int64) + o, np.array([super_sink])]
        row = np.diff(p.indptr)
        row[0] += 1
        row[-1] += 1
        lengths.append(row)
    indices.append(offset + sizes - 1)
    lengths.append(np.array([count]))
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(lengths))])
    return _Batch(
        size=super_sink + 1,
        indptr=indptr.astype(np.int32),
        indices=np.concatenate(indices).astype(np.int32),
        base=base,
        offset=offset,
    )


def _batched_max_flow(problems: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Exact max flow of each layered graph (a list of capacity blocks): ``(values, gaps)``.

    Each round solves the residual graphs of the flows so far with scipy's integer Dinic,
    each copy's capacities clipped at its bound and scaled to int32 by its own factor; the
    cut a round leaves behind bounds what is still missing and sets the next bound.
    """
    shapes = [(1, *(b.shape[0] for b in blocks)) for blocks in problems]
    patterns = [_pattern(sizes) for sizes in shapes]
    capacity = [np.concatenate([b.ravel() for b in blocks]) for blocks in problems]
    flow = [np.zeros_like(c) for c in capacity]
    values = np.zeros(len(problems))
    # The source's out-capacity and the sink's in-capacity bound each flow.
    bounds = np.array([min(blocks[0].sum(), blocks[-1].sum()) for blocks in problems])
    gaps = bounds.copy()
    for _ in range(_MAX_ROUNDS):
        active = np.flatnonzero(gaps > np.maximum(_REL_GAP * values, _ABS_GAP))
        if active.size == 0:
            break
        batch = _batch(tuple(shapes[k] for k in active))
        count = active.size
        caps = np.empty(batch.indices.size, dtype=np.int32)
        caps[:count] = _OPEN  # super-source -> each source
        caps[batch.base - 1] = 0  # and back
        caps[-count:] = 0  # super-sink -> each sink
        scales = _SCALE / bounds[active]
        for k, base, scale in zip(active, batch.base, scales, strict=True):
            p, bound = patterns[k], bounds[k]
            caps[base + p.forward] = np.floor(np.clip(capacity[k] - flow[k], 0.0, bound) * scale)
            caps[base + p.backward] = np.floor(np.minimum(flow[k], bound) * scale)
            caps[base + p.indices.size] = _OPEN  # each sink -> super-sink
        graph = csr_array((caps, batch.indices, batch.indptr), shape=(batch.size, batch.size))
        result = maximum_flow(graph, 0, batch.size - 1)
        net = result.flow.data
        if not np.array_equal(result.flow.indices, batch.indices):
            raise RuntimeError("scipy's maximum_flow reordered the arcs: attention flow cannot read the flow")
        source_side = _reachable(caps.astype(np.int64) - net, batch.indices, batch.indptr)
        for i, (k, base, scale) in enumerate(zip(active, batch.base, scales, strict=True)):
            p = patterns[k]
            flow[k] += net[base + p.forward] / scale
            values[k] += net[i] / scale
            side = source_side[batch.offset[i] : batch.offset[i] + p.size]
            leaves = side[p.tail] & ~side[p.head]
            enters = side[p.head] & ~side[p.tail]
            gaps[k] = np.clip(capacity[k] - flow[k], 0.0, None)[leaves].sum() + flow[k][enters].sum()
        bounds[active] = gaps[active]
    return values, gaps


def _reachable(residual: np.ndarray, indices: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Nodes reachable from node 0 over arcs with residual capacity: the source side of a min cut."""
    open_arcs = residual > 0
    counts = np.concatenate([[0], np.cumsum(open_arcs)])
    size = indptr.size - 1
    graph = csr_array(
        (np.ones(int(counts[-1]), dtype=np.int8), indices[open_arcs], counts[indptr]), shape=(size, size)
    )
    mask = np.zeros(size, dtype=bool)
    mask[breadth_first_order(graph, 0, directed=True, return_predecessors=False)] = True
    return mask
