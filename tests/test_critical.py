"""Critical labels: recall per label and the misses, most confidently missed first, counted by hand
from report.json's own examples; the index box and the compare page in Chromium."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sitebuild import sample_rows, write_config

from attnreport.analysis.critical import critical_recall
from attnreport.analysis.predictions import softmax
from attnreport.core.config import load_config
from attnreport.core.errors import ConfigError
from attnreport.pipeline import build
from attnreport.trace import Tracer
from attnreport.trace.inputs import Row


def test_recall_and_order_by_hand():
    judged = [
        (0, "urgent", "urgent", {"urgent": 0.9, "other": 0.1}),
        (1, "urgent", "other", {"urgent": 0.4, "other": 0.6}),
        (2, "urgent", "other", {"urgent": 0.05, "other": 0.95}),
        (3, "other", "urgent", {"urgent": 0.7, "other": 0.3}),
        (4, None, "other", {"urgent": 0.0, "other": 1.0}),
    ]
    (c,) = critical_recall(["urgent"], judged)
    assert (c.examples, c.caught, c.recall) == (3, 1, pytest.approx(1 / 3))
    assert [m.row for m in c.misses] == [2, 1]  # 5% for urgent is the more confident miss
    assert c.misses[0].confidence == 0.95 and c.misses[0].label_probability == 0.05
    (none,) = critical_recall(["absent"], judged)
    assert none.examples == 0 and none.recall is None and none.misses == []


def test_an_unknown_critical_label_names_the_model_labels(tiny, tmp_path):
    extra = '[analysis]\ncritical_labels = ["urgnet"]\n'
    config = load_config(write_config(tmp_path / "p", tiny.export("bert"), sample_rows(), extra=extra))
    with pytest.raises(ConfigError, match="'urgnet' is not a label of this model; its labels: alpha, beta"):
        build(config, tmp_path / "site", progress=False)


def test_missed_critical_cases_and_the_compare_page(browser, tiny, tmp_path):
    rows = sample_rows()
    other = tiny.export("bert")  # predicts gamma for all: the causal classifier does not
    extra = (
        f'[analysis]\ncritical_labels = ["beta", "alpha"]\nattributions = []\n[compare]\npath = "{other}"\n'
    )
    config = load_config(write_config(tmp_path / "p", tiny.export("gpt2-cls"), rows, extra=extra))
    site = build(config, tmp_path / "site", progress=False).site
    report = json.loads((site / "report.json").read_text(encoding="utf-8"))
    examples = report["examples"]
    critical = report["metrics"]["critical"]
    assert sorted(critical) == ["alpha", "beta"]
    for name, c in critical.items():
        mine = [e for e in examples if e["label"] == name]
        missed = [e for e in mine if e["prediction"] != name]
        assert c["examples"] == len(mine) and c["caught"] == len(mine) - len(missed)
        assert c["recall"] == pytest.approx((len(mine) - len(missed)) / len(mine))
        by_hand = sorted(missed, key=lambda e: (e["probabilities"][name], -e["confidence"]))
        assert [m["id"] for m in c["missed"]] == [e["id"] for e in by_hand]
        for m, e in zip(c["missed"], by_hand, strict=True):
            assert m["page"] == e["page"] and m["prediction"] == e["prediction"]
            assert m["label_probability"] == pytest.approx(e["probabilities"][name])
    # caught some, missed some: neither count is trivially 0 or all
    assert 0 < sum(c["caught"] for c in critical.values()) < sum(c["examples"] for c in critical.values())

    page = browser.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto((site / "index.html").as_uri())
    page.wait_for_load_state("load")
    box = page.locator("#critical")
    assert box.is_visible()
    for name, c in critical.items():
        line = box.locator(f'p.recall[data-label="{name}"]').text_content()
        assert f"caught {c['caught']} of {c['examples']}" in line
        links = box.locator(f'table.missed[data-label="{name}"] a')
        assert links.evaluate_all("as => as.map(a => a.getAttribute('href'))") == [
            m["page"] for m in c["missed"]
        ]
        assert [t for t in links.all_text_contents()] == [m["id"] for m in c["missed"]]
    # the hostile ids and texts are text, not markup
    assert page.evaluate("window.__pwned") is None
    first = box.locator("table.missed a").first
    first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith(".html") and "/examples/" in page.url

    # the compare page: flipped first, each example's shift recomputed from the second model's own run
    second = Tracer(other, cache_dir=tmp_path / "c2").trace(
        [Row(r["id"], r["text"], r["label"], 0) for r in rows]
    )
    b = {t.id: softmax(t.logits) for t in second}
    page.goto((site / "compare.html").as_uri())
    page.wait_for_load_state("load")
    shown = page.eval_on_selector_all(
        "#compare-rows tbody tr",
        "trs => trs.map(t => ({id: t.cells[0].textContent, flipped: t.dataset.flipped,"
        " shift: +t.dataset.shift}))",
    )
    assert sorted(s["id"] for s in shown) == sorted(r["id"] for r in rows)
    flips = [s["flipped"] == "1" for s in shown]
    assert flips == sorted(flips, reverse=True) and any(flips)
    labels = report["model"]["labels"]
    by_id = {e["id"]: e for e in examples}
    for s in shown:
        e = by_id[s["id"]]
        k = labels.index(e["prediction"])
        assert s["shift"] == pytest.approx(b[s["id"]][k] - e["probabilities"][e["prediction"]], abs=1e-5)
        assert (s["flipped"] == "1") == (labels[int(np.argmax(b[s["id"]]))] != e["prediction"])
    for group in (True, False):
        shifts = [abs(s["shift"]) for s in shown if (s["flipped"] == "1") == group]
        assert shifts == sorted(shifts, reverse=True)
    page.select_option("#c-flipped", "1")
    assert page.locator("#compare-rows tbody tr:visible").count() == sum(flips)
    assert page.text_content("#c-shown") == f"{sum(flips)} of {len(rows)} shown"
    page.select_option("#c-flipped", "")
    page.fill("#c-filter", "parcel")
    assert page.locator("#compare-rows tbody tr:visible").count() == 1
    assert problems == []
