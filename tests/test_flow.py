"""Attention flow against independent answers: networkx on the explicit graph, closed forms, cuts."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from attnreport.analysis import flow as flow_module
from attnreport.analysis.flow import MAX_FLOW_TOKENS, attention_flow, attention_flow_matrix
from attnreport.analysis.rollout import rollout


def random_attention(rng, layers, heads, n, *, causal=False, density=1.0, temperature=1.0):
    """Softmax rows of random logits; optionally causal, or with exact zeros shared by the heads."""
    logits = rng.normal(scale=temperature, size=(layers, heads, n, n))
    mask = np.broadcast_to(rng.random((layers, 1, n, n)) < density, logits.shape).copy()
    if causal:
        mask &= np.tril(np.ones((n, n), dtype=bool))
    rows = np.arange(n)
    first = rng.integers(0, rows + 1 if causal else n, size=(layers, 1, n))  # every row keeps a key
    np.put_along_axis(mask, np.broadcast_to(first, (layers, heads, n))[..., None], True, axis=-1)
    weights = np.where(mask, np.exp(logits), 0.0)
    return weights / weights.sum(axis=-1, keepdims=True)


def augmented(attentions, residual):
    """Â_l written out here, independently of the module."""
    n = attentions.shape[-1]
    out = []
    for layer in attentions:
        a = residual * np.eye(n) + (1 - residual) * layer.mean(axis=0)
        out.append(a / a.sum(axis=1, keepdims=True))
    return np.array(out)


def networkx_flow(attentions, residual, target):
    """The generic reference: maximum_flow_value on the whole (L+1)·n-node graph, per source."""
    layers = augmented(attentions, residual)
    n_layers, n, _ = layers.shape
    graph = nx.DiGraph()
    for depth in range(1, n_layers + 1):
        for i in range(n):
            for j in range(n):
                graph.add_edge((depth - 1, j), (depth, i), capacity=float(layers[depth - 1][i, j]))
    return np.array([nx.maximum_flow_value(graph, (0, j), (n_layers, target)) for j in range(n)])


def widest_path(layers, j, t):
    """Largest bottleneck of a single path from (0, j) to (L, t): a lower bound on the flow."""
    width = np.zeros(layers.shape[-1])
    width[j] = np.inf
    for layer in layers:
        width = np.minimum(layer, width[None, :]).max(axis=1)
    return width[t]


@pytest.mark.parametrize("seed", range(24))
def test_matches_networkx_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    layers, heads, n = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(2, 9))
    temperature = float(rng.choice([0.5, 2.0, 5.0]))
    attentions = random_attention(
        rng, layers, heads, n, causal=seed % 3 == 0, density=[1.0, 0.5][seed % 2], temperature=temperature
    )
    residual = float(rng.choice([0.5, 0.0, 0.3]))
    ours = attention_flow_matrix(attentions, residual=residual)
    for target in range(n):
        expected = networkx_flow(attentions, residual, target)
        np.testing.assert_allclose(ours[target], expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_matches_networkx_where_zeros_prune_the_graph(seed):
    """Sparse attention without residual: many tokens lie on no path, and the pruning must be right."""
    rng = np.random.default_rng(1000 + seed)
    layers, n = int(rng.integers(3, 7)), int(rng.integers(3, 9))
    attentions = random_attention(rng, layers, 2, n, causal=seed % 2 == 0, density=0.25)
    ours = attention_flow_matrix(attentions, residual=0.0)
    for target in range(n):
        expected = networkx_flow(attentions, 0.0, target)
        np.testing.assert_allclose(ours[target], expected, rtol=1e-9, atol=1e-12)


def test_matches_networkx_on_a_realistic_six_layer_model():
    rng = np.random.default_rng(7)
    attentions = random_attention(rng, 6, 12, 12, temperature=3.0)
    np.testing.assert_allclose(
        attention_flow(attentions, target=0), networkx_flow(attentions, 0.5, 0), rtol=1e-9, atol=1e-12
    )


def test_one_layer_is_the_edge_capacity():
    rng = np.random.default_rng(0)
    attentions = random_attention(rng, 1, 3, 7)
    layer = augmented(attentions, 0.5)[0]
    for target in range(7):
        np.testing.assert_allclose(attention_flow(attentions, target=target), layer[target], rtol=1e-12)


def test_two_layers_are_disjoint_paths_through_the_middle():
    rng = np.random.default_rng(1)
    attentions = random_attention(rng, 2, 2, 9, temperature=3.0)
    first, second = augmented(attentions, 0.5)
    target = 4
    expected = [sum(min(first[k, j], second[target, k]) for k in range(9)) for j in range(9)]
    np.testing.assert_allclose(attention_flow(attentions, target=target), expected, rtol=1e-12)


@pytest.mark.parametrize("n", [5, 40])
def test_the_solver_reproduces_the_two_layer_closed_form(n):
    """The same closed form, through the integer-refinement solver (two layers skip it in the API)."""
    rng = np.random.default_rng(n)
    first, second = augmented(random_attention(rng, 2, 4, n, temperature=4.0), 0.5)
    problems = [[first[:, j : j + 1], second[2:3, :]] for j in range(n)]
    values, gaps = flow_module._batched_max_flow(problems)
    expected = np.minimum(first, second[2][:, None]).sum(axis=0)
    np.testing.assert_allclose(values, expected, rtol=1e-11, atol=0)
    assert (gaps <= np.maximum(1e-12 * values, 1e-15)).all()
    assert (values <= expected * (1 + 1e-15)).all()  # a feasible flow never exceeds the maximum


@pytest.mark.parametrize("residual", [0.5, 0.0, 1.0])
def test_identity_attention_keeps_each_token_on_its_own_path(residual):
    attentions = np.broadcast_to(np.eye(5), (4, 3, 5, 5))
    np.testing.assert_allclose(attention_flow_matrix(attentions, residual=residual), np.eye(5), atol=0)


def test_full_residual_ignores_attention():
    rng = np.random.default_rng(2)
    attentions = random_attention(rng, 3, 2, 6)
    np.testing.assert_array_equal(attention_flow_matrix(attentions, residual=1.0), np.eye(6))


def test_a_middle_layer_bottleneck_limits_the_flow():
    """Three layers, three tokens, no residual, one head: every capacity written by hand.

    Layer 1: query 0 reads token 0; queries 1 and 2 read token 1; nobody reads token 2.
    Layer 2: every query gives token 0 only 0.1, 0.2, 0.3.
    Layer 3: position 0 reads 0.5, 0.3, 0.2.
    From token 0 all flow crosses (1, 0), then the thin layer-2 edges: min(0.1, 0.5) +
    min(0.2, 0.3) + min(0.3, 0.2) = 0.5, although the source could send 1 and the sink
    take 1. Token 1 reaches (2, 0) and (2, 1) through (1, 1) and (2, 2) through (1, 2):
    0.5 + 0.3 + 0.2 = 1. Token 2 has no edge out: 0.
    """
    first = [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    second = [[0.1, 0.9, 0], [0.2, 0.8, 0], [0.3, 0, 0.7]]
    third = [[0.5, 0.3, 0.2], [0, 1, 0], [0, 0, 1]]
    attentions = np.array([first, second, third], dtype=float)[:, None]
    row = attention_flow(attentions, target=0, residual=0.0)
    np.testing.assert_allclose(row, [0.5, 1.0, 0.0], rtol=1e-12, atol=0)
    source_out, sink_in = np.array(first)[:, 0].sum(), np.array(third)[0].sum()
    assert row[0] < min(source_out, sink_in)  # neither end is the limit


@pytest.mark.parametrize("seed", range(4))
def test_flow_lies_between_path_bounds_and_cut_bounds(seed):
    rng = np.random.default_rng(100 + seed)
    attentions = random_attention(rng, 4, 3, 10, temperature=3.0, causal=seed % 2 == 1)
    layers = augmented(attentions, 0.5)
    matrix = attention_flow_matrix(attentions)
    roll = rollout(attentions)
    assert ((matrix >= 0) & (matrix <= 1 + 1e-12)).all()
    # rollout's path weights form a feasible flow, so the max flow is at least rollout
    assert (matrix >= roll - 1e-12).all()
    first, second = layers[0], layers[1]
    for t in range(10):
        for j in range(10):
            assert matrix[t, j] >= widest_path(layers, j, t) - 1e-12
            # cuts: the source's edges; the sink's edges (sum 1); per middle token k of layer 1,
            # either its edge from the source or all of its edges into layer 2
            assert matrix[t, j] <= first[:, j].sum() + 1e-12
            assert matrix[t, j] <= layers[-1][t].sum() + 1e-12
            assert matrix[t, j] <= np.minimum(first[:, j], second.sum(axis=0)).sum() + 1e-12


def test_causal_attention_gives_no_flow_from_later_tokens():
    rng = np.random.default_rng(3)
    attentions = random_attention(rng, 4, 2, 8, causal=True)
    matrix = attention_flow_matrix(attentions)
    assert (matrix[np.triu_indices(8, k=1)] == 0).all()  # token j > t never reaches position t
    assert (np.diag(matrix) > 0).all()


def test_batched_and_one_by_one_solutions_agree(monkeypatch):
    rng = np.random.default_rng(4)
    attentions = random_attention(rng, 5, 2, 9, temperature=2.0, density=0.3)
    batched = attention_flow_matrix(attentions)
    monkeypatch.setattr(flow_module, "_BATCH_ARCS", 1)
    np.testing.assert_allclose(attention_flow_matrix(attentions), batched, rtol=1e-12, atol=1e-15)


def test_rows_of_the_matrix_are_the_single_target_rows():
    rng = np.random.default_rng(5)
    attentions = random_attention(rng, 3, 2, 6, temperature=2.0)
    matrix = attention_flow_matrix(attentions, residual=0.3)
    for target in range(6):
        np.testing.assert_array_equal(attention_flow(attentions, target=target, residual=0.3), matrix[target])
    np.testing.assert_array_equal(attention_flow(attentions, target=-1, residual=0.3), matrix[5])


def test_max_flow_tokens_is_a_documented_positive_length():
    """The module says why there is a limit (by name: its value lives in one place); the README
    states the value for users."""
    assert isinstance(MAX_FLOW_TOKENS, int) and MAX_FLOW_TOKENS > 0
    assert "MAX_FLOW_TOKENS" in flow_module.__doc__
    readme = (Path(flow_module.__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"up to {MAX_FLOW_TOKENS} tokens" in readme


@pytest.mark.parametrize(
    ("attentions", "message"),
    [
        (np.ones((2, 3, 4)), r"\[L, H, n, n\].*\[2, 3, 4\]"),
        (np.ones((1, 2, 3, 4)), r"\[L, H, n, n\].*\[1, 2, 3, 4\]"),
        (np.ones((0, 2, 3, 3)), r"no empty axis.*\[0, 2, 3, 3\]"),
        (-np.ones((1, 1, 2, 2)), r"\[1, 1, 2, 2\].*non-negative"),
        (np.full((1, 1, 2, 2), np.nan), r"\[1, 1, 2, 2\].*finite"),
    ],
)
def test_bad_attentions_name_the_shape(attentions, message):
    with pytest.raises(ValueError, match=message):
        attention_flow(attentions, target=0)
    with pytest.raises(ValueError, match=message):
        attention_flow_matrix(attentions)


def test_an_empty_row_without_residual_is_refused():
    attentions = np.full((2, 1, 3, 3), 1 / 3)
    attentions[1, 0, 2] = 0
    with pytest.raises(ValueError, match=r"\[2, 1, 3, 3\]: layer 1, query 2"):
        attention_flow(attentions, target=0, residual=0.0)
    attention_flow(attentions, target=0, residual=0.5)  # the residual fills the row


def test_bad_target_and_residual():
    attentions = np.full((1, 1, 3, 3), 1 / 3)
    with pytest.raises(ValueError, match="target 3 is out of range for 3 tokens"):
        attention_flow(attentions, target=3)
    with pytest.raises(ValueError, match="target -4"):
        attention_flow(attentions, target=-4)
    with pytest.raises(TypeError, match="target must be an int"):
        attention_flow(attentions, target=1.0)
    with pytest.raises(TypeError, match="target must be an int"):
        attention_flow(attentions, target=True)
    with pytest.raises(ValueError, match=r"residual must be in \[0, 1\], got 1.5"):
        attention_flow(attentions, target=0, residual=1.5)
