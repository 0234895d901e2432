"""Decision space: PCA against scikit-learn, round trips, the head evaluated on the slice, agreement;
then the space in report.json against scikit-learn's PCA of the real model's states."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sitebuild import sample_rows
from sklearn.decomposition import PCA

from attnreport.analysis.decision import PCA3, decision_space, fit_probe, pool
from attnreport.testing import model_card
from attnreport.trace import Tracer


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def test_pca_matches_sklearn_up_to_sign_and_signs_are_deterministic():
    x = np.random.default_rng(0).standard_normal((50, 12)) * np.linspace(5, 0.5, 12)
    ours = PCA3().fit(x)
    ref = PCA(n_components=3, svd_solver="full").fit(x)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(np.abs(ours.components_ @ ref.components_.T), np.eye(3), atol=1e-8)
    shuffled = PCA3().fit(x[np.random.default_rng(1).permutation(50)])
    np.testing.assert_allclose(shuffled.components_, ours.components_, atol=1e-10)
    for row in ours.components_:
        assert row[np.abs(row).argmax()] > 0


def test_inverse_transform_round_trips_points_in_the_span():
    rng = np.random.default_rng(2)
    basis = rng.standard_normal((3, 20))
    x = rng.standard_normal((40, 3)) @ basis + rng.standard_normal(20)
    pca = PCA3().fit(x)
    np.testing.assert_allclose(pca.inverse_transform(pca.transform(x)), x, atol=1e-9)
    coords = rng.standard_normal((5, 3))
    np.testing.assert_allclose(pca.transform(pca.inverse_transform(coords)), coords, atol=1e-9)


def test_volumes_are_the_head_evaluated_on_the_slice():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30, 8)) * [4, 3, 2, 0.5, 0.4, 0.3, 0.2, 0.1]
    w = rng.standard_normal((3, 8))
    head = lambda p: np.asarray(p, dtype=np.float64) @ w.T  # noqa: E731
    preds = (x @ w.T).argmax(axis=1)
    space = decision_space(x, preds, head, labels=["a", "b", "c"], grid=7)
    assert space.volumes.shape == (3, 7, 7, 7)
    np.testing.assert_allclose(space.volumes.sum(axis=0), 1, atol=1e-5)
    pca = PCA3().fit(x)
    for i, j, k in [(0, 0, 0), (6, 3, 1), (2, 5, 6)]:
        point = np.array([space.axes[0][i], space.axes[1][j], space.axes[2][k]])
        expected = softmax(pca.inverse_transform(point[None]) @ w.T)[0]
        np.testing.assert_allclose(space.volumes[:, i, j, k], expected, atol=1e-5)
    np.testing.assert_allclose(space.coords, pca.transform(x), atol=1e-9)


def test_slice_agreement_is_one_when_the_decision_lives_in_the_slice_and_low_when_not():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((200, 6)) * [5, 4, 3, 0.01, 0.01, 0.01]
    inside = np.zeros((2, 6))
    inside[1, 0] = 1.0  # class 1 when the first (largest) axis is positive
    head_in = lambda p: np.asarray(p, dtype=np.float64) @ inside.T  # noqa: E731
    space = decision_space(
        x - x.mean(0), (x - x.mean(0)) @ inside.T @ [0, 1] > 0, head_in, labels=["n", "p"], grid=5
    )
    assert space.slice_agreement == 1.0
    outside = np.zeros((2, 6))
    outside[1, 4] = 1.0  # decided by a direction the slice drops
    head_out = lambda p: np.asarray(p, dtype=np.float64) @ outside.T  # noqa: E731
    truth = (x @ outside.T).argmax(axis=1)
    space = decision_space(x, truth, head_out, labels=["n", "p"], grid=5)
    assert space.slice_agreement < 0.75


def test_probe_stands_in_for_a_missing_head():
    rng = np.random.default_rng(5)
    x = np.vstack([rng.standard_normal((30, 5)) + 3, rng.standard_normal((30, 5)) - 3])
    labels = ["up"] * 30 + ["down"] * 30
    head = fit_probe(x, labels, ["down", "up", "unused"])
    predicted = head(x).argmax(axis=1)
    assert list(predicted[:30]) == [1] * 30 and list(predicted[30:]) == [0] * 30
    assert np.all(softmax(head(x))[:, 2] < 1e-6)


def test_pooling_choices():
    hidden = np.arange(2 * 4 * 3, dtype=float).reshape(2, 4, 3)
    special = np.array([True, False, False, True])
    np.testing.assert_array_equal(pool(hidden, special, pooling="first"), hidden[-1, 0])
    np.testing.assert_array_equal(pool(hidden, special, pooling="last"), hidden[-1, -1])
    np.testing.assert_array_equal(pool(hidden, special, pooling="mean", layer=0), hidden[0, 1:3].mean(0))
    with pytest.raises(ValueError, match="pooling"):
        pool(hidden, special, pooling="max")


# -- per-layer decision spaces in the analysis stage -------------------------------------------------


class _Tracer:
    card, key, folder, window = model_card(layers=3, heads=2, labels=["neg", "pos"]), None, None, 16


def _stage(tmp_path, layers):
    from attnreport.core.config import AnalysisConfig
    from attnreport.run.stage import AnalysisStage

    return AnalysisStage(_Tracer(), AnalysisConfig(decision_layers=layers), tmp_path)


def test_decision_layers_resolve_to_absolute_layers_without_the_default(tmp_path):
    from attnreport.core.errors import ConfigError

    assert _stage(tmp_path, "all").extra_layers == [0, 1, 2]  # 3 is the default (-1)
    assert _stage(tmp_path, [2, -2, 3, 0]).extra_layers == [0, 2]
    assert _stage(tmp_path, []).extra_layers == []
    with pytest.raises(ConfigError, match="layer 4 is not a hidden layer .* 0 \\(the embeddings\\) to 3"):
        _stage(tmp_path, [1, 4])


def test_layer_decisions_are_probes_fitted_to_the_predictions_with_their_slice_agreement(tmp_path):
    """Planted: at layer 2 the model's prediction is the sign of the widest direction, with a
    margin (the slice keeps it: agreement 1); at layer 1 it hides in a narrow direction the slice
    drops (low); at layer 0 every example is the same vector (no space). Labels disagree with the
    predictions on purpose: the probe follows the predictions."""
    rng = np.random.default_rng(7)
    n, d = 80, 10
    stage = _stage(tmp_path, "all")
    wide = rng.standard_normal((n, d)) * np.linspace(6, 0.5, d)
    predicted = (wide[:, 0] > 0).astype(int)
    wide[:, 0] += np.where(predicted == 1, 4.0, -4.0)  # a margin along the widest axis
    narrow = rng.standard_normal((n, d)) * np.r_[6.0, 5.0, 4.0, np.full(d - 3, 0.05)]
    narrow[:, -1] = np.where(predicted == 1, 0.2, -0.2)
    stage.pooled_at = {0: [np.ones(d)] * n, 1: list(narrow), 2: list(wide)}
    stage.ids = [f"e{i}" for i in range(n)]
    stage.predicted = predicted.tolist()
    stage.truth = ["pos"] * n
    spaces = stage.layer_decisions()
    assert [s.layer for s in spaces] == [1, 2]
    assert all(s.source == "probe" and s.probe_target == "prediction" for s in spaces)
    assert spaces[1].slice_agreement == 1.0
    assert spaces[0].slice_agreement < 0.8
    for space, pooled in zip(spaces, (narrow, wide), strict=True):  # the probe's own slice, checked by hand
        pca = PCA3().fit(pooled)
        np.testing.assert_allclose(space.coords, pca.transform(pooled), atol=1e-9)
        assert space.slice_agreement == np.mean(space.slice_predictions == predicted)
        assert space.summary()["probe_target"] == "prediction"


def test_examples_without_a_finite_prediction_get_no_point(tmp_path):
    """A NaN logit has no argmax worth drawing, and a NaN pooled state would poison the PCA: such
    examples are left out of every space (counted), and the other points are those of a PCA
    fitted without them (checked against sklearn's on the finite rows alone)."""
    rng = np.random.default_rng(3)
    n, d = 40, 6
    stage = _stage(tmp_path, [1])
    pooled = rng.standard_normal((n, d)) * np.linspace(5, 1, d)
    predicted = (pooled[:, 0] > 0).astype(int).tolist()
    predicted[5] = -1  # NaN logits: the stage marks the prediction missing
    pooled[9] = np.nan  # a NaN hidden state with finite logits
    stage.pooled = list(pooled)
    stage.pooled_at = {1: list(pooled)}
    stage.ids = [f"e{i}" for i in range(n)]
    stage.predicted = predicted
    stage.truth = ["pos" if p == 1 else "neg" for p in predicted]
    keep = [i for i in range(n) if i not in (5, 9)]
    for space in (stage.decision(), *stage.layer_decisions()):
        assert list(space.rows) == keep and space.withheld == 2
        assert space.summary()["withheld"] == 2
        assert np.isfinite(space.coords).all() and np.isfinite(space.volumes).all()
        pca = PCA3().fit(pooled[keep])
        np.testing.assert_allclose(space.coords, pca.transform(pooled[keep]), atol=1e-9)
        assert space.slice_agreement == np.mean(space.slice_predictions == np.array(predicted)[keep])


# -- in report.json ---------------------------------------------------------------------------------


def test_decision_space_coordinates_and_slice_check(tiny, sample_site):
    config = sample_site.config
    data = json.loads((sample_site.site / "report.json").read_text())
    space = data["decision_space"]
    assert space["source"] == "model_head" and space["pooling"] == "first" and space["layer"] == -1
    traces = Tracer(tiny.export("bert"), cache_dir=config.cache_dir).trace_texts(
        [r["text"] for r in sample_rows()]
    )
    cls = np.stack([t.hidden[-1, 0] for t in traces]).astype(np.float64)
    ref = PCA(n_components=3, svd_solver="full").fit(cls)
    np.testing.assert_allclose(space["explained_variance"], ref.explained_variance_ratio_, rtol=1e-5)
    xyz = np.array([e["xyz"] for e in data["examples"]])
    np.testing.assert_allclose(np.abs(xyz), np.abs(ref.transform(cls)), atol=1e-4)
    agree = np.mean([e["slice_prediction"] == e["prediction"] for e in data["examples"]])
    assert space["slice_agreement"] == pytest.approx(agree)


def test_pooled_vectors_are_copies_that_keep_no_hidden_states_alive():
    """The analysis keeps one pooled vector per example: a view would keep the whole [L+1, n, d]."""
    hidden = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    special = np.array([True, False, False, True])
    for pooling in ("first", "last", "mean"):
        vector = pool(hidden, special, pooling=pooling)
        assert vector.shape == (5,) and not np.shares_memory(vector, hidden)
