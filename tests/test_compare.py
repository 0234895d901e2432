"""Comparing two runs: predictions and attention movement against hand computation, then the
compare page of a site built with the int8 export against both exports traced apart."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sitebuild import sample_rows, write_config

from attnreport.analysis.compare import compare_pair, summarise_comparison
from attnreport.core.config import load_config
from attnreport.core.trace import Trace
from attnreport.pipeline import build
from attnreport.testing import make_trace
from attnreport.trace import Tracer


def trace(text, logits, attn) -> Trace:
    """One run of `text`: only the text, the logits and the attentions matter to a comparison."""
    return make_trace(attn, id=text, text=text, logits=logits)


def test_pair_and_summary_by_hand():
    rng = np.random.default_rng(0)
    a = rng.random((2, 2, 3, 3))
    b = a.copy()
    b[1, 0, 2, 1] += 0.25
    x = compare_pair(trace("x", [2.0, 0.0], a), trace("x", [0.0, 1.0], b), ["p", "q"], ["p", "q"])
    assert x["prediction_a"] == "p" and x["prediction_b"] == "q" and x["agree"] is False
    assert x["max_attention_diff"] == pytest.approx(0.25)
    assert x["mean_attention_diff_by_layer"] == pytest.approx([0.0, 0.25 / 18])
    pa = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
    pb = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
    assert x["max_probability_diff"] == pytest.approx(np.max(np.abs(pa - pb)))
    y = compare_pair(trace("y", [1.0, 0.0], a), trace("y", [3.0, 0.0], a), ["p", "q"], ["p", "q"])
    assert y["agree"] is True and y["max_attention_diff"] == 0
    s = summarise_comparison([x, y])
    assert s["agreement"] == 0.5 and s["flipped"] == ["x"] and s["max_attention_diff"] == pytest.approx(0.25)
    assert s["mean_attention_diff_by_layer"] == pytest.approx([0.0, 0.25 / 36])


def test_different_texts_are_refused():
    a = np.full((1, 1, 2, 2), 0.5)
    with pytest.raises(ValueError, match="different texts"):
        compare_pair(trace("x", None, a), trace("y", None, a), [], [])


def test_compare_page_with_the_int8_export(tiny, tmp_path):
    folder = tiny.export("bert", quantize="int8")  # the session's, shared with test_export
    config = load_config(
        write_config(tmp_path / "p", folder, sample_rows(), extra="[compare]\nquantized = true\n")
    )
    site = build(config, tmp_path / "site", progress=False).site
    data = json.loads((site / "report.json").read_text())
    c = data["compare"]
    assert (
        c["name"] == "int8"
        and c["model"]["file"] == "model.int8.onnx"
        and c["examples"] == len(sample_rows())
    )
    fp32 = Tracer(folder, cache_dir=tmp_path / "c1").trace_texts([r["text"] for r in sample_rows()])
    int8 = Tracer(folder, quantized=True, cache_dir=tmp_path / "c2").trace_texts(
        [r["text"] for r in sample_rows()]
    )
    worst = max(float(np.abs(a.attentions - b.attentions).max()) for a, b in zip(fp32, int8, strict=True))
    assert c["max_attention_diff"] == pytest.approx(worst, rel=1e-5)
    agree = np.mean([np.argmax(a.logits) == np.argmax(b.logits) for a, b in zip(fp32, int8, strict=True)])
    assert c["agreement"] == pytest.approx(agree)
    html = (site / "compare.html").read_text()
    assert "int8" in html and 'href="compare.html"' in (site / "index.html").read_text()
    # the columns are named by what differs, not by the class both share
    head = html.split('<table class="examples" id="compare-rows">')[1].split("</thead>")[0]
    assert "<th>fp32</th><th>int8</th>" in head and "BertFor" not in head
    # one definition, stated where the number is, with the texts it is measured on: the index's
    # and the compare page's figure for these texts are the same, the export's is named as its own
    definition = "the largest change of any one attention weight: any layer, head, query and key"
    here = f"{c['max_attention_diff']:.3f}"
    index = (site / "index.html").read_text()
    card = json.loads((folder / "attnreport.json").read_text())["quantized"]
    assert card["texts"] == 3
    assert f"{here} on this report's {len(sample_rows())}" in index and definition in index
    assert f"up to {card['max_attention_diff']:.3f} on the 3 texts checked at export" in index
    assert f"by up to {here} ({definition}, over these {len(sample_rows())} texts)" in html
