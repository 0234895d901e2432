"""The one registry of attribution methods, which both kinds of report play on their own games,
and the one table of output ranges that fixes `negligible` and the pages' colour scales."""

from __future__ import annotations

import numpy as np
import pytest

from attnreport.analysis import options as option_checks
from attnreport.analysis.answer_attribution import UnitAttribution, _attribute
from attnreport.analysis.attribution_methods import (
    METHODS,
    OUTPUT_RANGE,
    VectorMemo,
    asked_methods,
    colour_scale_of,
)
from attnreport.core.config import AnalysisConfig
from attnreport.site import pages

#: an additive game: a coalition's value is the sum of its players' weights (plus a constant), so
#: every player's Shapley value and occlusion effect is its own weight
WEIGHTS = np.array([0.5, -1.25, 2.0, 0.0, 0.75])


def additive(masks: np.ndarray) -> np.ndarray:
    return np.asarray(masks, dtype=float) @ WEIGHTS + 3.0


def test_every_option_and_the_pages_name_methods_from_the_one_registry():
    assert [
        known
        for (_, known) in (*option_checks._METHOD_LISTS["analysis"], *option_checks._METHOD_LISTS["generate"])
    ] == [
        METHODS,
        METHODS,
    ]
    assert pages.ATTRIBUTION_NAMES == tuple(METHODS) == ("shapley", "occlusion")


def test_asked_methods_run_in_the_registry_order_whatever_the_config_order():
    assert [name for name, _ in asked_methods(["occlusion", "shapley"])] == ["shapley", "occlusion"]
    assert [name for name, _ in asked_methods(["occlusion", "lime"])] == ["occlusion"]


@pytest.mark.parametrize("name", list(METHODS))
def test_each_method_gives_an_additive_game_its_weights(name):
    scores = METHODS[name](additive, len(WEIGHTS), AnalysisConfig(), link="identity", random_state=0)
    np.testing.assert_allclose(scores.values, WEIGHTS, atol=1e-12)
    assert scores.exact  # five players: Shapley enumerates; occlusion is exact by definition


def test_the_answer_path_plays_each_column_of_its_memo_with_the_same_methods():
    """Two answer tokens (columns 0, 1), the whole answer (2), two runner-up contrasts (3, 4): each
    column an additive game of its own weights, so each row of the result is that column's weights."""
    scale = np.array([1.0, -2.0, 3.0, 0.5, 4.0])
    memo = VectorMemo(lambda masks: additive(masks)[:, None] * scale, columns=len(scale))
    expected = WEIGHTS[None, :] * scale[:, None]
    for name, method in METHODS.items():
        got = _attribute(name, method, memo, len(WEIGHTS), 2, AnalysisConfig(), 0)
        assert isinstance(got, UnitAttribution)
        np.testing.assert_allclose(got.values, expected[:2], atol=1e-12)
        np.testing.assert_allclose(got.answer, expected[2], atol=1e-12)
        np.testing.assert_allclose(got.contrasts, expected[3:], atol=1e-12)
        assert got.requested.shape == (0, len(WEIGHTS)) and got.exact
        assert got.method == ("exact-enumeration" if name == "shapley" else "occlusion")
        assert len(got.efficiency_gap) == (2 if name == "shapley" else 0)
    assert memo.evaluations == 2 ** len(WEIGHTS)  # occlusion's coalitions were all asked already


def test_colour_scales_are_half_each_output_range_as_the_pages_always_drew_them():
    """Pinned: the classifier's pages saturate at 0.5 (probability) and 5 (logit), the answer
    pages at 2 nats (log-probability) and 0.5 (probability); a difference, with no range of its
    own, at 0.5."""
    assert OUTPUT_RANGE == {"probability": 1.0, "logit": 10.0, "log_probability": 4.0}
    expected = {
        "probability": 0.5,
        "logit": 5.0,
        "log_probability": 2.0,
        "probability difference": 0.5,
        "logit difference": 0.5,
    }
    assert {output: colour_scale_of(output) for output in expected} == expected
    assert pages.colour_scale({"output": "logit", "negligible": 0.2}) == {
        "scale": 5.0,
        "negligible": 0.2,
        "output": "logit",
    }
    assert pages.colour_scale({"output": "logit"}, 3)["scale"] == 3.0  # `[site] attribution_scale`
