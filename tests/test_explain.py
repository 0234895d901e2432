"""Per-example analysis as it lands in report.json, checked against brute force on the real model."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from attnreport.analysis.shapley import KERNEL_MAX_PLAYERS
from attnreport.core.config import AnalysisConfig
from attnreport.core.errors import ConfigError
from attnreport.run.stage import explain_traced
from attnreport.trace import Tracer
from attnreport.trace.evaluate import MaskedModel


def brute_force_shapley(f, p: int) -> np.ndarray:
    """The textbook formula, one subset at a time."""
    values = np.zeros(p)
    cache = {}

    def v(subset):
        if subset not in cache:
            mask = np.zeros((1, p), dtype=bool)
            mask[0, list(subset)] = True
            cache[subset] = float(f(mask)[0])
        return cache[subset]

    for i in range(p):
        others = [j for j in range(p) if j != i]
        for size in range(p):
            for s in itertools.combinations(others, size):
                w = math.factorial(size) * math.factorial(p - size - 1) / math.factorial(p)
                values[i] += w * (v(tuple(sorted((*s, i)))) - v(s))
    return values


def test_exact_shapley_in_report_matches_brute_force_on_the_model(tiny_report, tiny):
    data, config = tiny_report
    short = data["examples"][0]
    sh = short["attributions"]["shapley"]
    assert sh["exact"] is True and sh["output"] == "probability" and sh["baseline"] == "[MASK]"
    assert sh["target"] == short["prediction"]
    tracer = Tracer(tiny.export("bert"), cache_dir=config.cache_dir)
    (trace,) = tracer.trace_texts([short["text"]])
    f = MaskedModel(tracer, trace)
    expected = brute_force_shapley(f, f.players)
    got = np.array(sh["values"])
    assert got[0] == 0 and got[-1] == 0  # special tokens stay in place
    np.testing.assert_allclose(got[1:-1], expected, atol=2e-6)
    # efficiency: the values share out exactly f(input) - f(all masked)
    assert sum(sh["values"]) == pytest.approx(sh["f_input"] - sh["f_baseline"], abs=1e-5)
    occ = np.array(short["attributions"]["occlusion"]["values"][1:-1])
    full = f(np.ones((1, f.players), dtype=bool))[0]
    for i in range(f.players):
        mask = np.ones((1, f.players), dtype=bool)
        mask[0, i] = False
        assert occ[i] == pytest.approx(full - f(mask)[0], abs=2e-6)


def test_sampled_shapley_reports_its_error_and_keeps_efficiency(tiny_report):
    data, _ = tiny_report
    example = data["examples"][1]
    sh = example["attributions"]["shapley"]
    assert sh["exact"] is False and len(sh["std_error"]) == len(example["tokens"])
    players = len(example["tokens"]) - 2
    assert sh["method"] == (
        "kernel-shap-paired" if players <= KERNEL_MAX_PLAYERS else "antithetic-permutation"
    )
    assert sh["evaluations"] <= AnalysisConfig().evaluations_per_token * players
    assert sh["std_error"][0] == 0 and sh["std_error"][-1] == 0 and max(sh["std_error"]) > 0
    assert sum(sh["values"]) == pytest.approx(sh["f_input"] - sh["f_baseline"], abs=1e-5)


LONG = "where is my parcel and when will it arrive, the card was charged twice"


@pytest.mark.parametrize(
    ("method", "declared"),
    [
        ("kernel", "kernel-shap-paired"),
        ("surrogate", "logit-additive-surrogate"),
        ("permutation", "antithetic-permutation"),
    ],
)
def test_every_shapley_estimator_declares_itself_and_keeps_efficiency(tiny, tmp_path, method, declared):
    tracer = Tracer(tiny.export("bert"), cache_dir=tmp_path)
    (trace,) = tracer.trace_texts([LONG])
    options = AnalysisConfig(shapley_method=method, evaluations_per_token=5, faithfulness=False, flow=False)
    result = explain_traced(tracer, trace, options)
    sh = result.attributions["shapley"]
    players = int((~trace.special).sum())
    assert sh["method"] == declared and sh["exact"] is False
    assert sum(sh["values"]) == pytest.approx(sh["f_input"] - sh["f_baseline"], abs=1e-9)
    assert ("std_error" in sh) is (method != "surrogate")  # the surrogate's error is a bias
    if method == "kernel":
        assert sh["evaluations"] <= 5 * players
    if method == "surrogate":
        assert sh["evaluations"] == 2 * players + 2
    # occlusion is read from the same evaluations: leave-one-out by hand
    f = MaskedModel(tracer, trace)
    occ = np.array(result.attributions["occlusion"]["values"])[~trace.special]
    masks = ~np.eye(players, dtype=bool)
    np.testing.assert_allclose(occ, f(np.ones((1, players), dtype=bool))[0] - f(masks), atol=2e-6)


def test_auto_estimator_follows_the_length_and_declares_what_it_used(tiny, tmp_path):
    tracer = Tracer(tiny.export("bert"), cache_dir=tmp_path)
    shorter, longer = "where is my parcel and when will it arrive", LONG
    options = AnalysisConfig(evaluations_per_token=4, faithfulness=False, flow=False)
    assert options.shapley_method == "auto"
    seen = {}
    for trace in tracer.trace_texts([shorter, longer]):
        players = int((~trace.special).sum())
        sh = explain_traced(tracer, trace, options).attributions["shapley"]
        seen[players <= KERNEL_MAX_PLAYERS] = sh["method"]
        assert len(sh["std_error"]) == len(trace.tokens)
        assert sum(sh["values"]) == pytest.approx(sh["f_input"] - sh["f_baseline"], abs=1e-9)
    assert seen == {True: "kernel-shap-paired", False: "antithetic-permutation"}


def test_unknown_methods_are_refused_with_the_known_ones_from_the_registries():
    from attnreport.analysis.options import check_options

    with pytest.raises(ConfigError, match="shapley_method = 'banzhaf'; choose one of auto, kernel"):
        check_options(AnalysisConfig(shapley_method="banzhaf"))
    with pytest.raises(ConfigError, match="unknown method 'lime'; known methods: shapley, occlusion"):
        check_options(AnalysisConfig(attributions=["occlusion", "lime"]))
    with pytest.raises(ConfigError, match="output = 'margin'; choose one of probability, logit"):
        check_options(AnalysisConfig(output="margin"))
    with pytest.raises(ConfigError, match="evaluations_per_token"):
        AnalysisConfig(evaluations_per_token=0)


def test_faithfulness_and_agreement_are_reported_for_every_view(tiny_report):
    data, _ = tiny_report
    ex = data["examples"][0]
    assert set(ex["faithfulness"]) == {"shapley", "occlusion", "rollout", "raw_attention", "flow", "random"}
    assert set(ex["agreement_with_occlusion"]) == {"shapley", "rollout", "raw_attention", "flow"}
    assert len(ex["flow"]) == len(ex["tokens"])
    summary = data["analysis"]["faithfulness"]
    assert summary["shapley"]["examples"] == 2
    mean = np.mean([e["faithfulness"]["shapley"]["comprehensiveness"] for e in data["examples"]])
    assert summary["shapley"]["comprehensiveness"] == pytest.approx(mean, rel=1e-6)
