"""Real headless Chromium on built pages: no errors, nothing from outside, controls work, nothing runs."""

from __future__ import annotations

import pytest
from conftest import CHROMIUM
from sitebuild import HOSTILE, sample_rows, write_config

from attnreport.core.config import load_config
from attnreport.pipeline import build

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser(playwright):
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    yield b
    b.close()


def open_page(browser, url):
    page = browser.new_page()
    problems = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    outside = []
    page.on(
        "request", lambda r: outside.append(r.url) if not r.url.startswith(url.split("/site/")[0]) else None
    )
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems, outside


def test_pages_load_cleanly_under_a_sub_path_and_controls_redraw(browser, tiny, tmp_path, served):
    root, base = served
    config = load_config(write_config(tmp_path / "p", tiny.export("bert"), sample_rows()))
    build(config, root / "site", progress=False)
    index, problems, outside = open_page(browser, f"{base}/site/index.html")
    assert problems == [] and outside == []
    links = index.eval_on_selector_all("#examples a", "els => els.map(e => e.getAttribute('href'))")
    assert len(links) == len(sample_rows())
    index.fill("#filter", "parcel")
    assert index.locator("#examples tbody tr:visible").count() == 1
    index.fill("#filter", "")
    index.select_option("#f-label", "beta")
    assert index.locator("#examples tbody tr:visible").count() == len(HOSTILE)
    index.select_option("#f-label", "")
    index.click("th[data-sort=number]")
    confidences = index.eval_on_selector_all(
        "#examples tbody tr", "rows => rows.map(r => parseFloat(r.dataset.confidence))"
    )
    assert confidences == sorted(confidences)
    heads = index.eval_on_selector_all("#atlas a.cell", "els => els.map(e => e.getAttribute('href'))")
    assert len(heads) == 8
    page, problems, outside = open_page(browser, f"{base}/site/{heads[5]}")
    assert problems == [] and outside == []
    link = page.get_attribute("ul a", "href")
    page.close()
    page, problems, _ = open_page(browser, f"{base}/site/heads/{link}")
    page.wait_for_selector("#heatmap .main-svg")
    assert (
        page.get_attribute("#heatmap", "data-layer") == "1"
        and page.get_attribute("#heatmap", "data-head") == "1"
    )
    page.close()
    for href in links:
        page, problems, outside = open_page(browser, f"{base}/site/{href}")
        assert problems == [] and outside == [], href
        assert page.evaluate("window.__pwned") is None, href
        page.wait_for_selector("#heatmap .main-svg")
        assert page.get_attribute("#heatmap", "data-layer") == "1"
        page.select_option("#layer", "0")
        page.select_option("#head", "2")
        assert page.get_attribute("#heatmap", "data-layer") == "0"
        assert page.get_attribute("#heatmap", "data-head") == "2"
        assert page.locator("#model-view canvas.thumb").count() == 2 * 4
        page.click("#model-view canvas.thumb[data-layer='1'][data-head='3']")
        assert page.get_attribute("#heatmap", "data-layer") == "1"
        assert page.get_attribute("#heatmap", "data-head") == "3"
        page.close()


def test_hostile_text_is_shown_literally(browser, tiny, tmp_path, served):
    root, base = served
    config = load_config(write_config(tmp_path / "p", tiny.export("bert"), sample_rows()))
    site = build(config, root / "site", progress=False).site
    import json

    report = json.loads((site / "report.json").read_text())
    for example in report["examples"][3:]:
        page, problems, _ = open_page(browser, f"{base}/site/{example['page']}")
        assert (
            page.inner_text(".source-text") == example["text"].replace("\u2028", "\n")
            or page.text_content(".source-text") == example["text"]
        )
        assert page.evaluate("window.__pwned") is None
        assert problems == []
        page.close()


def test_demo_example_page_from_file_url(browser, demo_site):
    pages = sorted((demo_site.site / "examples").glob("*.html"))
    page, problems, _ = open_page(browser, pages[0].as_uri())
    page.wait_for_selector("#heatmap .main-svg")
    assert problems == []
    assert page.locator("#tokens .token").count() > 3
    page.wait_for_function("document.querySelector('figure.scene3d').dataset.state")
    assert page.get_attribute("figure.scene3d", "data-state") in ("drawn", "fallback")
    index, problems, _ = open_page(browser, (demo_site.site / "index.html").as_uri())
    index.wait_for_function("document.querySelector('figure.scene3d').dataset.state")
    assert problems == []
    assert (demo_site.site / "scenes" / "decision.glb").read_bytes()[:4] == b"glTF"
