"""A generation report with answer attributions, built by the real pipeline on the planted copy
circuit: report.json's attributions, their declared units, and the page's colours in Chromium."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from test_browser import browser, open_page  # noqa: F401  (the module's Chromium fixture)

from attnreport.core.config import DataConfig, GenerateConfig, ModelConfig, ReportConfig
from attnreport.core.errors import ConfigError
from attnreport.pipeline import build

PROMPTS = ["w0 w5 w9 w2 w30 w11 w12 w5 w9", "w0 w7 w3 w21 w7"]


@pytest.fixture(scope="module")
def copy_site(tiny, tmp_path_factory):
    from tiny_models import make_copy_circuit

    from attnreport.export import export_model

    root = tmp_path_factory.mktemp("answer-page")
    export = tiny.root / "export-copy"
    if not export.exists():
        export_model(make_copy_circuit(tiny.root / "checkpoint-copy"), export)
    config = ReportConfig(
        title="copy circuit",
        model=ModelConfig(path=export),
        data=DataConfig(prompts=PROMPTS),
        generate=GenerateConfig(enabled=True, max_new_tokens=4),
        cache_dir=root / "cache",
    )
    config.validate()
    site = build(config, root / "site", progress=False).site
    return site, json.loads((site / "report.json").read_text(encoding="utf-8"))


def test_report_declares_units_values_and_contrasts(copy_site):
    _, report = copy_site
    g = report["examples"][0]["generation"]
    shap = g["attributions"]["shapley"]
    words = PROMPTS[0].split(" ")
    assert shap["unit"] == "word" and [u["text"] for u in shap["units"]] == words
    for u in shap["units"]:
        assert g["input_text"][u["start"] : u["stop"]] == u["text"]
    assert shap["output"] == "log_probability" and shap["baseline"]
    assert len(shap["values"]) == len(g["tokens"]) and all(len(v) == len(words) for v in shap["values"])
    # the copy: w2 follows w9 earlier, so w9's successor (unit 3, "w2") carries the first step
    assert int(np.argmax(shap["values"][0])) in (3, len(words) - 1)
    # efficiency: the whole answer's values sum to its log-probability's rise over the baseline
    assert len(shap["answer"]) == len(words)
    contrasts = [c for c in g["contrasts"] if c["method"] == "shapley"]
    assert [c["step"] for c in contrasts] == list(range(len(g["tokens"])))
    for c in contrasts:
        step = g["steps"][c["step"]]
        runner = next(t["token"] for t in step["top"] if t["token"] != c["target"])
        assert c["target"] == g["tokens"][c["step"]] and c["foil"] == runner
    faith = g["attribution_faithfulness"]
    assert {"shapley", "occlusion", "attention", "random"} <= set(faith)


def test_unknown_answer_method_is_one_line(tmp_path, tiny):
    config = ReportConfig(
        model=ModelConfig(path=tiny.root),
        data=DataConfig(prompts=["x"]),
        generate=GenerateConfig(enabled=True, attributions=["lime"]),
    )
    with pytest.raises(ConfigError, match=r"\[generate\] attributions has unknown method 'lime'; known"):
        build(config, tmp_path / "site", progress=False)


def chips(page):
    script = """els => els.map(e => [e.classList.contains('pos') ? 1 : e.classList.contains('neg') ? -1 : 0,
        parseFloat(e.style.getPropertyValue('--w') || '0')])"""
    return page.eval_on_selector_all("#g-tokens .token", script)


def test_page_shades_the_prompt_by_each_tokens_attribution(browser, copy_site, served):  # noqa: F811
    site, report = copy_site
    root, base = served
    (root / "site").symlink_to(site, target_is_directory=True)
    entry = report["examples"][0]
    g = entry["generation"]
    shap = g["attributions"]["shapley"]
    page, problems, outside = open_page(browser, f"{base}/site/{entry['page']}")
    page.wait_for_selector("body[data-generation-ready]")
    page.select_option("#g-shade", "shapley")
    n = len(g["prompt_tokens"])
    members = [[i] for i in range(n)]  # a word-level tokenizer: prompt token i is word i

    def expected(values):
        return [[float(np.sign(v)) or 1.0, min(1.0, abs(v) / 2.0)] for v in values]

    for step in (0, 2):
        page.click(f'#g-tokens button[data-step="{step}"]')
        got = chips(page)
        want = expected(shap["values"][step])
        for u, positions in enumerate(members):
            for position in positions:
                assert got[position][0] == want[u][0], (step, u)
                assert got[position][1] == pytest.approx(want[u][1], abs=1e-3)
        assert all(w == 0 for _, w in got[n:])  # answer tokens are no unit
    page.select_option("#g-explain", "contrast")
    got = chips(page)
    contrast = next(c for c in g["contrasts"] if c["method"] == "shapley" and c["step"] == 2)
    want = [min(1, abs(v) / 2) for v in contrast["values"]]
    assert [w for _, w in got[:n]] == pytest.approx(want, abs=1e-3)
    page.select_option("#g-explain", "answer")
    got = chips(page)
    assert [w for _, w in got[:n]] == pytest.approx([min(1, abs(v) / 2) for v in shap["answer"]], abs=1e-3)
    assert "whole answer" in page.text_content("#g-note")
    # the matrix: one cell per answer token and unit, its value report.json's
    cells = page.eval_on_selector_all(
        "#g-matrix rect[data-unit]", "rs => rs.map(r => [+r.dataset.step, +r.dataset.unit, +r.dataset.value])"
    )
    assert len(cells) == len(g["tokens"]) * len(shap["units"])
    for t, u, v in cells:
        assert v == pytest.approx(shap["values"][t][u], abs=1e-6)
    page.select_option("#g-matrix-method", "occlusion")
    cells = page.eval_on_selector_all("#g-matrix rect[data-unit]", "rs => rs.map(r => +r.dataset.value)")
    assert cells[0] == pytest.approx(g["attributions"]["occlusion"]["values"][0][0], abs=1e-6)
    with page.expect_download() as download:
        page.click("#g-matrix-svg")
    svg = ET.fromstring(Path(download.value.path()).read_bytes())
    assert len(list(svg.iter("{http://www.w3.org/2000/svg}rect"))) > len(cells)
    assert problems == [] and outside == []
