"""Shapley values against independent answers: the textbook sum, closed forms, the axioms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from attnreport.analysis.shapley import (
    ESTIMATORS,
    KERNEL_MAX_PLAYERS,
    LASSO_MIN_PLAYERS,
    ShapleyResult,
    exact_shapley,
    kernel_shap,
    occlusion,
    sampled_shapley,
    shapley,
    surrogate_shapley,
)


def codes_of(masks: np.ndarray) -> np.ndarray:
    """Coalition bitmask: player i present <=> bit i set (independent of the module's encoding)."""
    masks = np.asarray(masks, dtype=bool)
    return (masks.astype(np.int64) << np.arange(masks.shape[1], dtype=np.int64)).sum(axis=1)


def table_game(table: np.ndarray):
    """A set function given by a lookup table indexed by the coalition bitmask."""
    return lambda masks: table[codes_of(masks)]


def random_game(players: int, seed: int, offset: float = 0.0):
    table = np.random.default_rng(seed).normal(size=1 << players) + offset
    return table, table_game(table)


def textbook_shapley(table: np.ndarray, players: int) -> np.ndarray:
    """φ_i = Σ_{S ⊆ N∖{i}} |S|!(p−|S|−1)!/p! (v(S∪{i}) − v(S)), by itertools, one subset at a time."""
    phi = np.zeros(players)
    for i in range(players):
        others = [j for j in range(players) if j != i]
        for size in range(players):
            weight = math.factorial(size) * math.factorial(players - size - 1) / math.factorial(players)
            for subset in itertools.combinations(others, size):
                s = sum(1 << j for j in subset)
                phi[i] += weight * (table[s | 1 << i] - table[s])
    return phi


class Recorder:
    """Counts calls and keeps every mask row the value function was asked for."""

    def __init__(self, value) -> None:
        self.value = value
        self.calls: list[np.ndarray] = []

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        self.calls.append(np.array(masks, dtype=bool))
        return self.value(masks)

    @property
    def rows(self) -> np.ndarray:
        return np.concatenate(self.calls)


# --- exact: brute force and closed forms ------------------------------------------------------


@pytest.mark.parametrize("players", range(1, 8))
def test_exact_matches_the_textbook_sum_on_random_games(players):
    for seed in range(3):
        table, game = random_game(players, seed=100 * players + seed)
        result = exact_shapley(game, players)
        np.testing.assert_allclose(result.values, textbook_shapley(table, players), rtol=0, atol=1e-12)
        assert result.exact and result.std_error is None
        assert result.evaluations == 2**players
        assert result.f_baseline == table[0] and result.f_input == table[-1]
        assert result.method == "exact-enumeration"


def test_additive_game_gives_its_weights():
    w = np.array([0.7, -0.2, 0.05, 0.0, 1.3, -0.6, 0.25, 0.4, -0.1])
    game = lambda masks: masks.astype(float) @ w + 3.0  # noqa: E731
    np.testing.assert_allclose(exact_shapley(game, len(w)).values, w, atol=1e-12)
    # every order gives every player exactly w_i: the sample has no error at all
    sampled = sampled_shapley(game, len(w), permutations=16)
    np.testing.assert_allclose(sampled.values, w, atol=1e-12)
    np.testing.assert_allclose(sampled.std_error, 0, atol=1e-12)


def test_unanimity_game_splits_one_among_the_carriers():
    players, carriers = 8, [1, 4, 6]
    game = lambda masks: masks[:, carriers].all(axis=1).astype(float)  # noqa: E731
    expected = np.zeros(players)
    expected[carriers] = 1 / len(carriers)
    np.testing.assert_allclose(exact_shapley(game, players).values, expected, atol=1e-12)


def test_symmetric_players_get_equal_values_and_a_dummy_gets_zero():
    players = 7
    table, _ = random_game(players, seed=5)
    codes = np.arange(1 << players)
    swapped = codes & ~0b11 | (codes & 1) << 1 | (codes >> 1) & 1  # exchange players 0 and 1
    symmetric = (table + table[swapped]) / 2
    values = exact_shapley(table_game(symmetric), players).values
    assert values[0] == pytest.approx(values[1], abs=1e-12)
    assert abs(values[0] - values[2]) > 1e-3  # the game is otherwise asymmetric
    dummy = 3
    values = exact_shapley(table_game(table[codes & ~(1 << dummy)]), players).values
    assert values[dummy] == pytest.approx(0, abs=1e-12)
    assert np.all(np.abs(np.delete(values, dummy)) > 1e-6)


def test_single_player_gets_the_whole_change():
    game = table_game(np.array([0.25, 0.75]))
    for result in (exact_shapley(game, 1), sampled_shapley(game, 1, permutations=8)):
        np.testing.assert_allclose(result.values, [0.5])
        assert result.efficiency_gap == 0


# --- efficiency -------------------------------------------------------------------------------


@pytest.mark.parametrize("players", [2, 5, 10])
def test_efficiency_holds_exact_and_sampled(players):
    table, game = random_game(players, seed=players, offset=50.0)
    exact = exact_shapley(game, players)
    sampled = sampled_shapley(game, players, permutations=30, random_state=3)
    for result in (exact, sampled):
        assert abs(result.efficiency_gap) < 1e-9
        assert abs(result.values.sum() - (table[-1] - table[0])) < 1e-9


# --- sampling ---------------------------------------------------------------------------------


def test_sampled_converges_to_exact_within_its_standard_error():
    players = 10
    _, game = random_game(players, seed=42)
    exact = exact_shapley(game, players).values
    small = sampled_shapley(game, players, permutations=64, random_state=7)
    large = sampled_shapley(game, players, permutations=1024, random_state=7)
    assert large.permutations == 1024 and not large.exact
    z = np.abs(large.values - exact) / large.std_error
    assert (z < 4).sum() >= players - 1, z
    ratio = small.std_error.mean() / large.std_error.mean()
    assert 2.5 < ratio < 6, ratio  # 1/sqrt(k): sqrt(16) = 4
    assert np.abs(large.values - exact).mean() < np.abs(small.values - exact).mean()


def test_permutations_round_up_to_even_and_at_least_two_pairs():
    _, game = random_game(4, seed=0)
    assert sampled_shapley(game, 4, permutations=5).permutations == 6
    assert sampled_shapley(game, 4, permutations=1).permutations == 4
    assert sampled_shapley(game, 4, permutations=8).permutations == 8


def test_sampled_never_evaluates_a_coalition_twice_and_batches():
    players = 9
    _, game = random_game(players, seed=1)
    recorder = Recorder(game)
    result = sampled_shapley(recorder, players, permutations=200, batch=300)
    rows = recorder.rows
    distinct = np.unique(codes_of(rows))
    assert len(distinct) == len(rows) == result.evaluations
    assert all(len(call) <= 300 for call in recorder.calls)
    assert len(recorder.calls) == math.ceil(len(rows) / 300)
    assert {0, 2**players - 1} <= set(distinct.tolist())
    # 200 orders have 200 * 10 prefixes; far fewer are distinct
    assert result.evaluations < 200 * (players - 1) + 2


def test_sampled_handles_wide_games_whose_masks_exceed_a_machine_word():
    players = 101  # not a multiple of 8, and far beyond 64 bits
    w = np.random.default_rng(0).normal(size=players)
    recorder = Recorder(lambda masks: masks.astype(float) @ w)
    result = sampled_shapley(recorder, players, permutations=6)
    np.testing.assert_allclose(result.values, w, atol=1e-12)
    assert len(np.unique(recorder.rows, axis=0)) == len(recorder.rows) == result.evaluations


def test_sampled_is_deterministic_with_a_fixed_random_state():
    _, game = random_game(8, seed=2)
    a = sampled_shapley(game, 8, permutations=40, random_state=11)
    b = sampled_shapley(game, 8, permutations=40, random_state=11)
    c = sampled_shapley(game, 8, permutations=40, random_state=12)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.std_error, b.std_error)
    assert not np.array_equal(a.values, c.values)
    assert sampled_shapley(game, 8, permutations=4, random_state=None).values.shape == (8,)


# --- batching, dispatch, occlusion ------------------------------------------------------------


@pytest.mark.parametrize("batch", [100, 512, 1024, 4096])
def test_exact_calls_the_value_function_in_batches(batch):
    _, game = random_game(10, seed=3)
    recorder = Recorder(game)
    exact_shapley(recorder, 10, batch=batch)
    assert len(recorder.calls) == math.ceil(1024 / batch)
    assert all(len(call) <= batch for call in recorder.calls)
    assert len(np.unique(codes_of(recorder.rows))) == len(recorder.rows) == 1024


def test_shapley_is_exact_up_to_max_exact_and_sampled_beyond():
    _, game = random_game(6, seed=4)
    assert shapley(game, 6, max_exact=6).method == "exact-enumeration"
    sampled = shapley(game, 6, method="permutation", max_exact=5, permutations=10, random_state=1)
    assert sampled.method == "antithetic-permutation"
    assert sampled.permutations == 10
    np.testing.assert_array_equal(
        sampled.values, sampled_shapley(game, 6, permutations=10, random_state=1).values
    )


def test_occlusion_is_leave_one_out_by_hand():
    players = 6
    table, game = random_game(players, seed=9)
    recorder = Recorder(game)
    everyone = 2**players - 1
    expected = [table[everyone] - table[everyone & ~(1 << i)] for i in range(players)]
    np.testing.assert_allclose(occlusion(recorder, players), expected, rtol=0, atol=0)
    assert len(recorder.calls) == 1 and len(recorder.rows) == players + 1


# --- validation and output --------------------------------------------------------------------


def test_bad_input_is_refused_with_the_shapes_named():
    _, game = random_game(3, seed=0)
    with pytest.raises(ValueError, match="at least 1"):
        exact_shapley(game, 0)
    with pytest.raises(ValueError, match="permutations"):
        sampled_shapley(game, 3, permutations=0)
    with pytest.raises(ValueError, match=r"shape \[8, 1\].*shape \[8, 3\]"):
        exact_shapley(lambda masks: game(masks)[:, None], 3)
    with pytest.raises(ValueError, match=r"shape \[3\].*shape \[4, 3\]"):
        occlusion(lambda masks: game(masks)[:-1], 3)
    with pytest.raises(ValueError, match="non-finite"):
        sampled_shapley(lambda masks: np.full(len(masks), np.nan), 3, permutations=4)
    with pytest.raises(ValueError, match="sampled_shapley"):
        exact_shapley(game, 40)


def test_result_round_trips_through_a_dict():
    _, game = random_game(5, seed=6)
    for result in (exact_shapley(game, 5), sampled_shapley(game, 5, permutations=8)):
        again = ShapleyResult.from_dict(result.to_dict())
        np.testing.assert_array_equal(again.values, result.values)
        assert again.to_dict() == result.to_dict()


# --- paired Kernel SHAP -----------------------------------------------------------------------


def interaction_game(players: int, seed: int):
    """A probability with pairwise interactions, like a classifier's: σ(a + Σ β_i z_i + Σ γ_ij z_i z_j)."""
    rng = np.random.default_rng(seed)
    beta, gamma = rng.normal(size=players), np.triu(rng.normal(size=(players, players)), 1)
    codes = np.arange(1 << players)
    z = ((codes[:, None] >> np.arange(players)) & 1).astype(float)
    table = 1 / (1 + np.exp(-(0.2 + z @ beta + np.einsum("ni,ij,nj->n", z, gamma, z))))
    return table, table_game(table)


@pytest.mark.parametrize("players", [6, 8])
def test_kernel_shap_at_full_budget_is_the_textbook_value(players):
    table, game = interaction_game(players, seed=players)
    result = kernel_shap(game, players, budget=2**players)
    np.testing.assert_allclose(result.values, textbook_shapley(table, players), atol=1e-12)
    assert result.exact and result.evaluations == 2**players


def test_kernel_shap_recovers_an_additive_game_exactly_with_zero_error():
    w = np.random.default_rng(1).normal(size=14)
    result = kernel_shap(lambda masks: masks.astype(float) @ w + 3.0, 14, budget=4 * 14, random_state=2)
    np.testing.assert_allclose(result.values, w, atol=1e-10)
    np.testing.assert_allclose(result.std_error, 0, atol=1e-10)
    assert result.method == "kernel-shap-paired" and not result.exact


@pytest.mark.parametrize(("players", "budget"), [(6, 30), (9, 40), (10, 200), (13, 52), (40, 160)])
def test_kernel_shap_efficiency_holds_exactly_whatever_the_sample(players, budget):
    if players <= 13:
        table, game = random_game(players, seed=players, offset=50.0)
        full, empty = table[-1], table[0]
    else:
        w = np.random.default_rng(0).normal(size=players)
        game = lambda masks: 50 + np.sin(masks @ w) + masks[:, 0] * masks[:, 1]  # noqa: E731
        full, empty = game(np.ones((1, players), dtype=bool))[0], 50.0
    for seed in range(3):
        result = kernel_shap(game, players, budget=budget, random_state=seed)
        assert abs(result.efficiency_gap) < 1e-10
        assert abs(result.values.sum() - (full - empty)) < 1e-10


def test_kernel_shap_evaluates_each_coalition_once_within_budget_and_shares_occlusions():
    players, budget = 11, 60
    _, game = random_game(players, seed=3)
    recorder = Recorder(game)
    result = kernel_shap(recorder, players, budget=budget, batch=16)
    codes = codes_of(recorder.rows)
    assert len(np.unique(codes)) == len(codes) == result.evaluations <= budget
    assert result.evaluations >= budget - 1  # pairs: at most one short
    assert all(len(call) <= 16 for call in recorder.calls)
    everyone = 2**players - 1
    outer = {0, everyone} | {1 << i for i in range(players)} | {everyone & ~(1 << i) for i in range(players)}
    assert outer <= set(codes.tolist())  # occlusion's leave-one-out rows are among them


def test_kernel_shap_error_shrinks_as_the_budget_grows():
    """Mean error over seeds against brute force; each 4x budget must cut it by a third at least."""
    players = 9
    errors = []
    for budget in (3 * players, 12 * players, 48 * players):  # 432 < 2^9: still sampled
        err = []
        for seed in range(6):
            table, game = interaction_game(players, seed=seed)
            exact = textbook_shapley(table, players) if seed == 0 else exact_shapley(game, players).values
            estimate = kernel_shap(game, players, budget=budget, random_state=100 + seed).values
            err.append(np.abs(estimate - exact).mean())
        errors.append(np.mean(err))
    assert errors[1] < 0.67 * errors[0] and errors[2] < 0.67 * errors[1], errors
    assert errors[2] < 0.01, errors


def test_kernel_shap_standard_error_is_roughly_calibrated():
    """Over 60 games, about 95% of values lie within 1.96 standard errors of the exact ones."""
    players, inside = 8, []
    for seed in range(60):
        _, game = interaction_game(players, seed=seed)
        exact = exact_shapley(game, players).values
        result = kernel_shap(game, players, budget=12 * players, random_state=seed + 7)
        inside.append(np.abs(result.values - exact) <= 1.96 * result.std_error)
    coverage = np.mean(inside)
    assert 0.82 <= coverage <= 0.995, coverage


def test_kernel_shap_is_deterministic_with_a_fixed_random_state():
    _, game = random_game(10, seed=8)
    a, b = (kernel_shap(game, 10, budget=50, random_state=4) for _ in range(2))
    c = kernel_shap(game, 10, budget=50, random_state=5)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.std_error, b.std_error)
    assert not np.array_equal(a.values, c.values)


def test_kernel_shap_beats_permutations_at_equal_evaluations():
    players, k_err, p_err = 10, [], []
    for seed in range(8):
        _, game = interaction_game(players, seed=50 + seed)
        exact = exact_shapley(game, players).values
        kernel = kernel_shap(game, players, budget=80, random_state=seed)
        perm = sampled_shapley(game, players, permutations=8, random_state=seed)  # 8 * 9 + 2 = 74
        assert perm.evaluations <= kernel.evaluations + 6
        k_err.append(np.abs(kernel.values - exact).mean())
        p_err.append(np.abs(perm.values - exact).mean())
    assert np.mean(k_err) < np.mean(p_err), (np.mean(k_err), np.mean(p_err))


# --- logit-additive surrogate -----------------------------------------------------------------


@pytest.mark.parametrize("players", [5, 16])
def test_surrogate_is_exact_on_a_logit_additive_game(players):
    """2p + 2 runs determine such a game; beyond 14 players its values come from orders."""
    rng = np.random.default_rng(players)
    beta = rng.normal(size=players)
    game = lambda masks: 1 / (1 + np.exp(-(0.3 + masks @ beta)))  # noqa: E731
    recorder = Recorder(game)
    result = surrogate_shapley(recorder, players)
    exact = exact_shapley(game, players).values
    np.testing.assert_allclose(result.values, exact, atol=1e-9 if players <= 14 else 2e-3)
    assert result.evaluations == len(recorder.rows) == 2 * players + 2
    assert result.std_error is None and not result.exact
    assert result.method == "logit-additive-surrogate"
    assert abs(result.efficiency_gap) < 1e-12


def test_surrogate_with_identity_link_is_exact_on_additive_games_and_efficient_on_any():
    w = np.random.default_rng(3).normal(size=9)
    result = surrogate_shapley(lambda masks: masks @ w - 1.0, 9, link="identity")
    np.testing.assert_allclose(result.values, w, atol=1e-12)
    table, game = random_game(9, seed=2, offset=0.5)
    for link in ("identity", "logit"):
        tab = table if link == "identity" else 1 / (1 + np.exp(-table))
        result = surrogate_shapley(table_game(tab), 9, link=link)
        assert abs(result.values.sum() - (tab[-1] - tab[0])) < 1e-12
    with pytest.raises(ValueError, match="identity"):
        surrogate_shapley(game, 9, link="probit")


# --- dispatch ---------------------------------------------------------------------------------


def test_shapley_dispatches_by_method_and_budget():
    players = 12
    _, game = interaction_game(players, seed=1)
    recorder = Recorder(game)
    kernel = shapley(recorder, players, max_exact=8, evaluations_per_player=5)
    assert kernel.method == "kernel-shap-paired" and kernel.evaluations <= 5 * players
    assert kernel.evaluations == len(recorder.rows)
    assert shapley(game, players, method="surrogate").evaluations == 2 * players + 2
    assert shapley(game, players, method="permutation", permutations=6).permutations == 6
    # enumeration whenever it is no dearer than the estimator
    assert shapley(game, 6, max_exact=4, evaluations_per_player=11).method == "exact-enumeration"
    assert shapley(game, 3, max_exact=1, method="surrogate").exact
    with pytest.raises(ValueError, match="auto, kernel, permutation, surrogate"):
        shapley(game, players, method="banzhaf")
    assert tuple(ESTIMATORS) == ("auto", "kernel", "permutation", "surrogate", "lasso")


def test_auto_is_kernel_shap_on_short_games_and_permutations_within_the_budget_on_long_ones():
    def logistic(players: int):  # σ(Σ β_i z_i), computed per coalition (no table of 2^p)
        beta = np.random.default_rng(players).normal(size=players)
        return lambda masks: 1 / (1 + np.exp(-(masks.astype(float) @ beta)))

    short = shapley(logistic(KERNEL_MAX_PLAYERS), KERNEL_MAX_PLAYERS, evaluations_per_player=8)
    assert short.method == "kernel-shap-paired"
    for players, per_player in ((KERNEL_MAX_PLAYERS + 1, 8), (LASSO_MIN_PLAYERS, 8), (LASSO_MIN_PLAYERS, 3)):
        recorder = Recorder(logistic(players))
        result = shapley(recorder, players, evaluations_per_player=per_player)
        assert result.method == "antithetic-permutation" and result.std_error is not None
        # the budget spent on whole antithetic pairs, no more, but two pairs at least (the spread)
        budget = per_player * players
        pairs = result.permutations // 2
        assert pairs == max(2, (budget - 2) // (2 * (players - 1)))
        assert len(recorder.rows) == result.evaluations <= max(budget, 2 + 4 * (players - 1))


def test_auto_fits_the_lasso_surrogate_on_a_bounded_budget_beyond_lasso_min_players():
    def logistic(players: int):
        beta = np.random.default_rng(players).normal(size=players) * (np.arange(players) % 5 == 0)
        return lambda masks: 1 / (1 + np.exp(-(masks.astype(float) @ beta)))

    for players, per_player, runs in ((LASSO_MIN_PLAYERS + 1, 3, 3 * (LASSO_MIN_PLAYERS + 1)), (300, 8, 256)):
        recorder = Recorder(logistic(players))
        result = shapley(recorder, players, evaluations_per_player=per_player)
        assert result.method == "lasso-surrogate" and result.std_error is None
        # the per-unit budget, capped at `runs` (256): bounded whatever the number of players
        assert len(recorder.rows) == result.evaluations == runs
