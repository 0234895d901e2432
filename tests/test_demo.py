"""The demo end to end on real MiniLM weights: an honest held-out report."""

from __future__ import annotations

import json

import pytest

from attnreport.demo import demo_rows, split


def test_split_is_stratified_disjoint_and_stable():
    rows = demo_rows()
    assert len(rows) >= 150 and len({r["label"] for r in rows}) >= 3
    train, test = split(rows)
    assert {r["id"] for r in train}.isdisjoint({r["id"] for r in test})
    assert len(train) + len(test) == len(rows)
    for label in {r["label"] for r in rows}:
        share = sum(r["label"] == label for r in test) / sum(r["label"] == label for r in rows)
        assert abs(share - 0.3) < 0.02
    assert split(rows) == (train, test)


def test_demo_site_reports_held_out_accuracy(demo_site):
    report = json.loads((demo_site.site / "report.json").read_text())
    _, test = split(demo_rows())
    examples = report["examples"]
    assert [e["id"] for e in examples] == [r["id"] for r in test]  # held-out texts only
    assert report["model"]["architecture"] == "BertForSequenceClassification"
    assert report["model"]["layers"] == 6 and report["model"]["heads"] == 12
    assert report["model"]["onnx"]["max_abs_diff_to_pytorch"]["attentions"] <= 1e-4
    assert report["model"]["onnx"]["quantized"]["int8_seq_per_s"] > 0
    correct = sum(e["prediction"] == e["label"] for e in examples)
    assert report["metrics"]["accuracy"] == pytest.approx(correct / len(examples), rel=1e-6)
    # a real classifier: far above the 1/3 of chance on texts it never saw
    assert report["metrics"]["accuracy"] > 0.6
    assert "held-out" in report["model"]["notes"]["Training"]
    for e in examples:
        assert len(e["rollout"]) == len(e["tokens"]) and e["tokens"][0] == "[CLS]"


def test_demo_reports_its_domains_side_by_side(demo_site):
    report = json.loads((demo_site.site / "report.json").read_text())
    _, test = split(demo_rows())
    groups = report["groups"]
    assert groups["column"] == "domain" and groups["ungrouped"] == 0
    domains = {r["domain"] for r in test}
    assert {g["name"] for g in groups["groups"]} == domains
    for g in groups["groups"]:
        mine = [e for e in report["examples"] if e["group"] == g["name"]]
        assert g["examples"] == len(mine)
        assert g["accuracy"] == pytest.approx(sum(e["prediction"] == e["label"] for e in mine) / len(mine))
        assert "symptoms" in g["token_groups"]["groups"]
    html = (demo_site.site / "index.html").read_text(encoding="utf-8")
    assert 'id="data-groups"' in html and 'id="f-group"' in html and 'data-choice="group"' in html
