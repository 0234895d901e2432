"""A long text's page in Chromium: the text shaded unit by unit exactly as report.json states the
units and their values, the text itself literal, folded after a few lines."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sitebuild import write_config
from test_browser import _alpha, expected_shade

from attnreport.core.config import load_config
from attnreport.pipeline import build

LONG = "\n".join(f"Where is my parcel number {i}? The card was charged <b>twice</b>." for i in range(12))


def test_a_long_text_is_shaded_by_sentence_as_report_json_says(browser, tiny, tmp_path):
    rows = [{"id": "short", "text": "lock my account now", "label": "alpha"},
            {"id": "long", "text": LONG, "label": "beta"}]  # fmt: skip
    extra = "[analysis]\nevaluations_per_token = 4\n"
    config = load_config(write_config(tmp_path / "p", tiny.export("bert"), rows, extra=extra))
    site = build(config, tmp_path / "site", progress=False).site
    report = json.loads((site / "report.json").read_text(encoding="utf-8"))
    short, long = report["examples"]
    assert short["attributions"]["shapley"]["unit"] == "token"
    assert len(short["attributions"]["shapley"]["values"]) == len(short["tokens"])
    sh = long["attributions"]["shapley"]
    assert long["windows"] and sh["unit"] == "sentence" and sh["windows"] == len(long["windows"])
    units = sh["units"]
    assert len(units) == len(sh["values"]) == 24 and long["model_runs"] > 0
    assert all(LONG[u["start"] : u["stop"]] == u["text"] for u in units)
    assert units[1]["text"] == "The card was charged <b>twice</b>."

    page = browser.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto((site / long["page"]).as_uri())
    page.wait_for_load_state("load")
    assert page.get_attribute("#attribution-unit", "data-unit") == "sentence"
    assert "sentence (24 sentences" in page.text_content("#attribution-unit")
    for name in ("shapley", "occlusion"):
        values = long["attributions"][name]["values"]
        page.select_option("#view", name)
        spans = page.eval_on_selector_all(
            "#tokens .token",
            "ts => ts.map(t => ({cls: t.className, text: t.textContent, value: t.dataset.value,"
            " w: t.style.getPropertyValue('--w'), bg: getComputedStyle(t).backgroundColor}))",
        )
        assert [s["text"] for s in spans] == [u["text"] for u in units]
        strongest = max(abs(v) for v in values)
        a = long["attributions"][name]
        colours = {"scale": 0.5, "negligible": a["negligible"]}  # a probability's default scale
        for span, value in zip(spans, values, strict=True):
            share, kind = expected_shade(value, colours, strongest)
            assert {"unit", kind} <= set(span["cls"].split())
            assert float(span["value"]) == pytest.approx(value, rel=1e-6, abs=1e-9)
            assert float(span["w"]) == pytest.approx(share, abs=1e-3)
            assert _alpha(span["bg"]) == pytest.approx(0.9 * share, abs=0.01)
        # the whole text, literally, line breaks and markup-like text included
        assert page.text_content("#tokens") == LONG
        assert page.locator("#tokens b").count() == 0
        assert "one value per sentence (24 sentences)" in page.text_content("#legend")
    # the token views stay per token
    page.select_option("#view", "rollout")
    assert page.locator("#tokens .token").count() == len(long["tokens"])
    assert page.locator("#tokens .unit").count() == 0
    # saved as a figure: one row per sentence
    page.select_option("#view", "shapley")
    with page.expect_download() as info:
        page.click("#tok-svg")
    svg = ET.fromstring(Path(info.value.path()).read_bytes())
    texts = [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert len(texts) == 25 and texts[1].startswith("The card was charged <b>twice</b>")
    # the text folds after a few lines, and unfolds
    source = page.locator("#source-text")
    folded = source.evaluate("e => e.getBoundingClientRect().height")
    assert "folded" in source.get_attribute("class")
    page.click("button.unfold")
    assert "folded" not in source.get_attribute("class")
    assert source.evaluate("e => e.getBoundingClientRect().height") > 1.5 * folded
    assert problems == []
    page.close()
