"""Attention rollout (analysis/rollout.py): the paper's formula by hand, alone and in report.json."""

from __future__ import annotations

import json

import numpy as np
from sitebuild import sample_rows

from attnreport.analysis import rollout


def test_rollout_in_report_is_the_first_row_of_the_paper_formula(sample_site, tiny):
    from attnreport.trace import Tracer

    report = json.loads((sample_site.site / "report.json").read_text())
    trace = Tracer(tiny.export("bert"), cache_dir=sample_site.config.cache_dir).trace_texts(
        [sample_rows()[0]["text"]]
    )[0]
    a = trace.attentions.astype(np.float64)
    n = trace.n_tokens
    joint = np.eye(n)
    for layer in range(a.shape[0]):
        mixed = 0.5 * a[layer].mean(0) + 0.5 * np.eye(n)
        joint = (mixed / mixed.sum(1, keepdims=True)) @ joint
    np.testing.assert_allclose(report["examples"][0]["rollout"], joint[0], rtol=1e-6, atol=1e-7)


def test_rollout_function_against_hand_computed_two_layer_case():
    a1 = np.array([[[0.5, 0.5], [0.0, 1.0]]])  # one head
    a2 = np.array([[[1.0, 0.0], [0.25, 0.75]]])
    got = rollout(np.stack([a1, a2]))
    m1 = np.array([[0.75, 0.25], [0.0, 1.0]])
    m2 = np.array([[1.0, 0.0], [0.125, 0.875]])
    np.testing.assert_allclose(got, m2 @ m1)
