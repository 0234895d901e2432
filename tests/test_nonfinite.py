"""A model that gives NaN or infinity: the numbers are refused (null, never a made-up value),
the prediction is withheld, and both the example page and the index say so."""

from __future__ import annotations

import json

import numpy as np

from attnreport.analysis.results import nonfinite_outputs
from attnreport.core.trace import Trace
from attnreport.kinds.classification import plan_from_traces
from attnreport.site.build import write_site
from attnreport.testing import make_trace, model_card


def trace(id: str, *, logits, nan_attention: int = 0, seed: int = 0) -> Trace:
    rng = np.random.default_rng(seed)
    words = ["[CLS]", "rent", "is", "late", "[SEP]"]
    n = len(words)
    a = rng.random((2, 2, n, n)) + 0.1
    a /= a.sum(axis=-1, keepdims=True)
    if nan_attention:
        a.reshape(-1)[:nan_attention] = np.nan
    return make_trace(
        a,
        tokens=words,
        id=id,
        text="rent is late",
        offsets=[(0, 0), (0, 4), (5, 7), (8, 12), (0, 0)],
        hidden=rng.standard_normal((3, n, 4)),
        logits=np.asarray(logits, dtype=np.float32),
        label="alpha",
    )


def test_nonfinite_outputs_are_counted_by_output():
    t = trace("x", logits=[np.nan, 1.0], nan_attention=3)
    assert nonfinite_outputs(t) == {"logits": 1, "attentions": 3}
    assert nonfinite_outputs(trace("ok", logits=[0.0, 1.0])) == {}


def test_a_model_giving_nan_gets_no_prediction_and_a_warning(tmp_path):
    traces = [
        trace("fine", logits=[2.0, 0.0]),
        trace("nan-logits", logits=[np.nan, 0.0], seed=1),
        trace("inf-attention", logits=[0.0, 3.0], nan_attention=2, seed=2),
    ]
    plan = plan_from_traces(traces, model_card(), title="t", spool=tmp_path / "spool")
    records = {r["id"]: r for r in plan.report["examples"]}
    assert "nonfinite" not in records["fine"]
    assert records["nan-logits"]["nonfinite"] == {"logits": 1}
    assert records["nan-logits"]["prediction"] is None and records["nan-logits"]["confidence"] is None
    assert records["inf-attention"]["nonfinite"] == {"attentions": 2}
    assert records["inf-attention"]["prediction"] == "beta"
    assert all(x is not None and np.isfinite(x) for x in records["inf-attention"]["rollout"])
    assert plan.report["nonfinite_examples"] == ["nan-logits", "inf-attention"]
    # accuracy over the two examples with a prediction: "fine" right, "inf-attention" wrong
    assert plan.report["metrics"]["accuracy"] == 0.5 and plan.report["metrics"]["labelled"] == 2

    site = write_site(plan, tmp_path / "site")
    report_text = (site / "report.json").read_text(encoding="utf-8")
    assert "NaN" not in report_text and "Infinity" not in report_text
    json.loads(report_text)
    pages = {r["id"]: (site / r["page"]).read_text(encoding="utf-8") for r in records.values()}
    assert "not finite" not in pages["fine"]
    assert "not finite" in pages["nan-logits"] and "No prediction is shown" in pages["nan-logits"]
    assert "2 in attentions" in pages["inf-attention"]
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "On 2 examples the model gave values that are not finite" in index
