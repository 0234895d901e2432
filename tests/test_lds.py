"""The LASSO surrogate against brute force on linear games, and the linear datamodeling score
against a hand computation and scipy's Spearman correlation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from attnreport.analysis.lds import heldout_ablations, linear_datamodeling_score
from attnreport.analysis.shapley import ESTIMATORS, exact_shapley, lasso_surrogate, shapley
from attnreport.analysis.shapley.lasso import random_ablations


def _linear(weights: np.ndarray, intercept: float = 0.3):
    calls = []

    def value(masks: np.ndarray) -> np.ndarray:
        calls.append(len(masks))
        return intercept + masks.astype(float) @ weights

    return value, calls


def test_lasso_recovers_a_linear_game_and_its_zeros():
    rng = np.random.default_rng(4)
    p = 60
    weights = np.zeros(p)
    support = rng.choice(p, size=6, replace=False)
    weights[support] = rng.choice([-1, 1], size=6) * rng.uniform(0.5, 2.0, size=6)
    value, calls = _linear(weights)
    result = lasso_surrogate(value, p, runs=128, random_state=0)
    # brute force: a linear game's Shapley values are its coefficients (checked on a subgame small
    # enough to enumerate), and the surrogate finds them from 126 ablations of 60 units
    small, _ = _linear(weights[:10])
    assert np.allclose(exact_shapley(small, 10).values, weights[:10])
    assert np.abs(result.values - weights).max() < 0.05
    off = np.setdiff1d(np.arange(p), support)
    assert np.abs(result.values[off]).max() < 0.02
    assert (np.abs(result.values[off]) == 0).mean() > 0.8  # sparse: most units exactly zero
    assert result.evaluations == sum(calls) == 128
    assert result.method == "lasso-surrogate" and result.std_error is None and not result.exact
    assert result.f_baseline == pytest.approx(0.3) and result.f_input == pytest.approx(0.3 + weights.sum())


def test_lasso_budget_is_runs_not_players():
    for p in (20, 200):
        value, calls = _linear(np.linspace(-1, 1, p))
        result = shapley(value, p, method="lasso", max_exact=0, runs=64)
        assert result.evaluations == sum(calls) == 64
    assert "lasso" in ESTIMATORS


def test_lasso_enumerates_when_runs_cover_every_coalition():
    value, _ = _linear(np.array([1.0, -2.0, 0.5, 0.0]))
    result = lasso_surrogate(value, 4, runs=64)
    assert result.exact and np.allclose(result.values, [1.0, -2.0, 0.5, 0.0])


def test_lasso_of_a_constant_game_is_zero():
    result = lasso_surrogate(lambda m: np.full(len(m), 2.0), 40, runs=32)
    assert np.array_equal(result.values, np.zeros(40))


def test_lds_by_hand():
    # three units, four held-out masks; values (1, 2, -1) predict 1, 0, 2 and 3:
    #   mask 110 -> 1 + 2 = 3;  001 -> -1;  011 -> 2 - 1 = 1;  111 -> 2
    masks = np.array([[1, 1, 0], [0, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=bool)
    values = np.array([1.0, 2.0, -1.0])
    actual = np.array([0.9, -0.5, 1.5, 1.2])
    # predicted ranks (3, -1, 1, 2) -> (4, 1, 2, 3); actual ranks -> (2, 1, 4, 3)
    # Spearman = 1 - 6 Σd² / (n(n² - 1)) = 1 - 6 (4 + 0 + 4 + 0) / 60 = 0.2
    assert linear_datamodeling_score(values, masks, actual) == pytest.approx(0.2)
    assert linear_datamodeling_score(values, masks, actual) == pytest.approx(
        spearmanr(masks @ values, actual).statistic
    )


def test_lds_matches_scipy_with_ties_and_several_games():
    rng = np.random.default_rng(1)
    masks = rng.random((40, 7)) < 0.5
    values = rng.integers(-2, 3, size=(3, 7)).astype(float)  # integer weights: tied predictions
    actual = rng.normal(size=(40, 3)).round(1)  # rounded: tied actual values
    got = linear_datamodeling_score(values, masks, actual)
    want = [spearmanr(masks @ values[j], actual[:, j]).statistic for j in range(3)]
    assert np.allclose(got, want)
    assert np.isnan(linear_datamodeling_score(np.zeros(7), masks, actual[:, 0]))
    with pytest.raises(ValueError, match=r"values \[k, p\], masks \[m, p\] and actual \[m, k\]"):
        linear_datamodeling_score(values, masks, actual[:, :2])


def test_lds_of_exact_shapley_on_a_linear_game_is_one():
    weights = np.array([0.5, -1.0, 2.0, 0.0, 0.25, -0.75, 1.5, 0.1])
    value, _ = _linear(weights)
    phi = exact_shapley(value, 8).values
    masks = heldout_ablations(8, 50, random_state=3)
    assert linear_datamodeling_score(phi, masks, value(masks)) == pytest.approx(1.0)


def test_heldout_ablations_are_fresh_and_independent_of_training_draws():
    p = 30
    training = random_ablations(p, 200, random_state=0)
    held = heldout_ablations(p, 100, random_state=0, exclude=training)
    keys = {row.tobytes() for row in np.packbits(training, axis=1)}
    assert len(held) == 100 and not any(row.tobytes() in keys for row in np.packbits(held, axis=1))
    assert len({row.tobytes() for row in np.packbits(held, axis=1)}) == 100  # distinct
    # the same seed draws another stream: not the training masks, and about half kept
    assert not np.array_equal(held, random_ablations(p, 100, random_state=0))
    assert 0.4 < held.mean() < 0.6
    # on a small game the exclusion leaves what is left
    few = heldout_ablations(3, 10, exclude=np.array([[0, 0, 0], [1, 1, 1]], dtype=bool))
    assert len(few) == 6


class _LinearAnswer:
    """A stand-in for `trace.forced.ForcedAnswer` whose answer tokens' log-probabilities are linear
    in the kept units (two alternatives per step, no asked-for contrasts)."""

    baseline = "[PAD]"
    foils: list = []

    def __init__(self, weights: np.ndarray):
        self.weights = weights
        self.steps, self.players = weights.shape
        self.top = np.tile([7, 8], (self.steps, 1))
        self.chosen = np.full(self.steps, 7)
        self.runs = 0

    def __call__(self, masks):
        from types import SimpleNamespace

        self.runs += len(masks)
        chosen = -3.0 + masks.astype(float) @ self.weights.T
        alternatives = np.stack([chosen, chosen - 1.0], axis=-1)
        return SimpleNamespace(chosen=chosen, alternatives=alternatives, requested=np.zeros((len(masks), 0)))

    def token_of(self, i):
        return f"w{i}"


@pytest.mark.parametrize("method", ["kernel", "lasso"])
def test_every_answer_view_is_scored_on_the_same_counted_heldout_ablations(method):
    from attnreport.analysis.answer_attribution import explain_answer
    from attnreport.core.config import AnalysisConfig

    rng = np.random.default_rng(2)
    weights = rng.normal(size=(3, 24)) * (rng.random((3, 24)) < 0.3)
    runs = {}
    for held in (0, 40):
        model = _LinearAnswer(weights)
        options = AnalysisConfig(shapley_method=method, lasso_runs=96, lds_ablations=held, max_exact=4)
        result = explain_answer(model, options=options)
        assert result.evaluations == model.runs
        runs[held] = model.runs
        if held:
            assert result.lds_ablations == held and set(result.lds) == {"shapley", "occlusion"}
            # a linear game: occlusion and Kernel SHAP find it exactly, and their values predict every
            # held-out run; LASSO's shrinkage swaps a few near ties
            for name in ("shapley", "occlusion"):
                tol = 0.01 if (name, method) == ("shapley", "lasso") else 1e-9
                assert result.lds[name]["answer"] == pytest.approx(1.0, abs=tol)
                assert result.lds[name]["tokens"] == pytest.approx([1.0, 1.0, 1.0], abs=tol)
        else:
            assert result.lds == {} and result.lds_ablations == 0
    assert runs[40] - runs[0] == 40  # one run per held-out ablation, none already run


def test_the_budgets_are_checked_when_the_config_is_read():
    from attnreport.core.config import AnalysisConfig
    from attnreport.core.errors import ConfigError

    assert AnalysisConfig(lds_ablations=0).lds_ablations == 0
    with pytest.raises(ConfigError, match=r"lds_ablations = -1; give a whole number >= 0"):
        AnalysisConfig(lds_ablations=-1)
    with pytest.raises(ConfigError, match=r"lasso_runs = 0; give a whole number >= 1"):
        AnalysisConfig(lasso_runs=0)
