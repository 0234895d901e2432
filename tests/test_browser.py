"""Real headless Chromium on built pages: no errors, nothing from outside, controls work, nothing runs."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from sitebuild import HOSTILE, sample_rows, write_config

from attnreport.core.config import load_config
from attnreport.pipeline import build


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


def test_pages_load_cleanly_under_a_sub_path_and_controls_redraw(browser, sample_site):
    base = sample_site.base
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


def test_hostile_text_is_shown_literally(browser, sample_site):
    base, site = sample_site.base, sample_site.site
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


def page_attention(page):
    """The page's own attention, decoded as its script does: uint8, deflated, base64, [L, H, n, n]."""
    data = json.loads(page.text_content("#example-data"))
    block = data["attention"]
    assert block["encoding"] == "uint8-sqrt-deflate-base64"  # square roots, as bytes
    q = np.frombuffer(zlib.decompress(base64.b64decode(block["data"])), dtype=np.uint8)
    return data, (q.reshape(block["shape"]).astype(np.float64) * block["scale"]) ** 2


def head_view_lines(page):
    return page.eval_on_selector_all(
        "#head-view g[data-q] line",
        "ls => ls.map(l => [+l.parentNode.dataset.q, +l.dataset.k, +l.getAttribute('stroke-opacity')])",
    )


def check_lines_match(page, weights):
    """Every weight at or above the drawn threshold is a line, as opaque as the weight; so is each
    token's strongest weight, and the strongest line from a token goes to its argmax key."""
    threshold = float(page.get_attribute("#head-view svg", "data-threshold"))
    lines = head_view_lines(page)
    drawn = {(q, k) for q, k, _ in lines}
    above = {tuple(ix) for ix in np.argwhere(weights >= threshold).tolist()}
    assert above <= drawn
    extra = drawn - above
    assert len({q for q, _ in extra}) == len(extra)  # at most one more line per token
    for q, k in extra:
        assert weights[q, k] == pytest.approx(weights[q].max(), abs=1e-6)
    assert {q for q, _ in drawn} == {q for q in range(len(weights)) if weights[q].max() > 0}
    for q, k, opacity in lines:  # opacity runs to the strongest weight, as the heatmap's colours
        assert opacity == pytest.approx(weights[q, k] / weights.max(), abs=1.5e-3)
    for q in {q for q, _, _ in lines}:
        mine = [(opacity, k) for qq, k, opacity in lines if qq == q]
        strongest = max(mine)[1]
        assert weights[q, strongest] == pytest.approx(weights[q].max(), abs=1e-6), q
    return lines


def planted_site(tiny, tmp_path, root):
    """The sample texts' real tokens (hostile ones too) with planted attention, and a 300-token text.

    A tiny random model attends almost uniformly, so its heads look alike; planted weights give
    every head its own peaks, and layer 1 head 2 attends to the previous token (a known answer).
    """
    from attnreport.core.trace import Trace
    from attnreport.kinds.classification import plan_from_traces
    from attnreport.site.build import write_site
    from attnreport.trace import Tracer

    tracer = Tracer(tiny.export("bert"), cache_dir=tmp_path / "cache")
    rng = np.random.default_rng(0)

    def planted(layers, heads, n):
        weights = rng.dirichlet(np.full(n, 0.3), size=(layers, heads, n))
        weights[1, 2] = np.eye(n, k=-1)
        weights[1, 2, 0, 0] = 1.0
        return weights

    traces = []
    for trace in tracer.trace_texts([r["text"] for r in sample_rows()]):
        trace.attentions = planted(*trace.attentions.shape[:3]).astype(np.float32)
        traces.append(trace)
    n, layers, heads = 300, traces[0].layers, traces[0].heads
    tokens = ["[CLS]", *(f"w{i}" if i % 7 else "<b>x</b>" for i in range(1, n - 1)), "[SEP]"]
    traces.append(
        Trace(
            id="long",
            text=" ".join(tokens[1:-1]),
            tokens=tokens,
            offsets=np.zeros((n, 2), dtype=np.int64),
            special=[i in (0, n - 1) for i in range(n)],
            attentions=planted(layers, heads, n),
            hidden=np.zeros((layers + 1, n, 4), dtype=np.float32),
            logits=np.zeros(len(tracer.card.labels)),
        )
    )
    plan = plan_from_traces(traces, tracer.card, title="planted", spool=tmp_path / "spool")
    return write_site(plan, root / "site")


def test_head_view_draws_the_page_attention_follows_the_head_and_keeps_tokens_literal(
    browser, tiny, tmp_path, served
):
    root, base = served
    site = planted_site(tiny, tmp_path, root)
    report = json.loads((site / "report.json").read_text())
    hostile = report["examples"][3]
    page, problems, outside = open_page(browser, f"{base}/site/{hostile['page']}#layer=0&head=1")
    page.wait_for_selector("#head-view svg")
    assert page.get_attribute("#head-view svg", "data-layer") == "0"
    assert page.get_attribute("#head-view svg", "data-head") == "1"
    data, attention = page_attention(page)
    check_lines_match(page, attention[0, 1])
    # a deep link is followed live; the previous-token head draws each token's line to the one before
    page.evaluate("location.hash = '#layer=1&head=2'")
    page.wait_for_function("document.querySelector('#head-view svg').dataset.head === '2'")
    assert page.get_attribute("#head-view svg", "data-layer") == "1"
    before = check_lines_match(page, attention[1, 2])
    n = len(data["tokens"])
    assert sorted((q, k) for q, k, _ in before) == [(0, 0)] + [(q, q - 1) for q in range(1, n)]
    # switching the head redraws the head view with the heatmap, and the address follows
    page.select_option("#head", "0")
    assert page.get_attribute("#head-view svg", "data-head") == "0"
    assert page.get_attribute("#heatmap", "data-head") == "0"
    after = check_lines_match(page, attention[1, 0])
    assert after != before
    assert page.url.endswith("#layer=1&head=0")
    layer = 1
    page.select_option("#head", "mean")
    check_lines_match(page, attention[layer].mean(0))
    page.select_option("#layer", "0")
    page.select_option("#head", "3")
    lines = check_lines_match(page, attention[0, 3])
    # hovering a query token keeps its lines alone
    page.hover("#head-view g[data-side=q] text[data-i='1']")
    on = page.eval_on_selector_all(
        "#head-view line.on", "ls => ls.map(l => [+l.parentNode.dataset.q, +l.dataset.k])"
    )
    assert sorted(on) == sorted([q, k] for q, k, _ in lines if q == 1) and on
    assert page.evaluate("document.querySelector('#head-view svg').classList.contains('focus')")
    # hostile token text is text: the same strings as the data, no element made from it
    for side in ("q", "k"):
        shown = page.eval_on_selector_all(
            f"#head-view g[data-side={side}] text", "ts => ts.map(t => t.firstChild.nodeValue)"
        )
        assert shown == [t if len(t) <= 28 else t[:27] + "…" for t in data["tokens"]]
    assert any("<" in t for t in data["tokens"]), data["tokens"]
    assert page.locator("#head-view script, #head-view img, #head-view foreignObject").count() == 0
    assert page.evaluate("window.__pwned") is None
    # both downloads are the figure as drawn
    with page.expect_download() as download:
        page.click("#hv-svg")
    assert download.value.suggested_filename == "head-view-layer0-head3.svg"
    svg = ET.parse(download.value.path()).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(svg.findall(".//{http://www.w3.org/2000/svg}line")) == len(lines)
    assert not svg.findall(".//*[@class]")
    with page.expect_download() as download:
        page.click("#hv-png")
    assert download.value.suggested_filename == "head-view-layer0-head3.png"
    with open(download.value.path(), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    # the model view saves too: one image per layer and head
    with page.expect_download() as download:
        page.click("#mv-svg")
    svg = ET.parse(download.value.path()).getroot()
    images = svg.findall(".//{http://www.w3.org/2000/svg}image")
    assert len(images) == attention.shape[0] * attention.shape[1]
    assert all(i.get("href").startswith("data:image/png;base64,") for i in images)
    with page.expect_download() as download:
        page.click("#mv-png")
    assert download.value.suggested_filename == "model-view.png"
    with open(download.value.path(), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert problems == [] and outside == []
    page.close()
    # hundreds of tokens: a higher threshold, and a range of 256 tokens at a time, in a scrolling box
    long = next(e for e in report["examples"] if e["id"] == "long")
    page, problems, outside = open_page(browser, f"{base}/site/{long['page']}#layer=0&head=0")
    page.wait_for_selector("#head-view svg")
    data, attention = page_attention(page)
    assert len(data["tokens"]) == 300
    assert page.get_attribute("#head-view svg", "data-threshold") == "0.05"
    weights = attention[0, 0]
    for start, stop in ((0, 256), (256, 300)):
        page.select_option("#hv-range", str(start))
        assert page.get_attribute("#head-view svg", "data-from") == str(start)
        lines = {(q, k) for q, k, _ in head_view_lines(page)}
        inside = range(start, stop)
        want = {(q, k) for q in inside for k in inside if weights[q, k] >= 0.05}
        want |= {(q, int(weights[q].argmax())) for q in inside if int(weights[q].argmax()) in inside}
        assert lines == want, start  # the range's weights above the threshold, and each strongest in it
        assert f"tokens {start}–{stop - 1} of 300" in page.text_content("#hv-note")
    assert page.is_visible("#hv-range-label")
    page.select_option("#hv-range", "0")
    page.wait_for_selector("#heatmap g.xtick", state="attached")
    assert 0 < page.locator("#heatmap g.xtick").count() <= 100  # every 4th token named: redraws stay fast
    box = page.eval_on_selector("#head-view", "b => [b.clientHeight, b.scrollHeight]")
    assert box[0] < box[1]
    shown = page.eval_on_selector_all(
        "#head-view g[data-side=q] text", "ts => ts.map(t => t.firstChild.nodeValue)"
    )
    assert shown == data["tokens"][:256] and "<b>x</b>" in shown
    assert page.locator("#head-view b").count() == 0
    assert problems == [] and outside == []
    page.close()


def _alpha(css: str) -> float:
    """The alpha of a computed colour: rgba(r, g, b, a), color(srgb r g b / a), or opaque."""
    found = re.search(r"/\s*([0-9.]+)\)$", css) or re.search(r"rgba\([^,]+,[^,]+,[^,]+,\s*([0-9.]+)\)", css)
    return float(found.group(1)) if found else (0.0 if css == "transparent" else 1.0)


def expected_shade(value: float, colours: dict | None, strongest: float) -> tuple[float, str]:
    """A token's share of the full colour and its class: an attribution (with `colours`, the
    page's fixed scale) is |value| / scale, clipped at 1, and "neutral" below its negligible
    effect; rollout and flow are |value| / the text's strongest."""
    if colours is None:
        return (abs(value) / strongest if strongest > 0 else 0.0), ("neg" if value < 0 else "pos")
    if abs(value) < colours["negligible"]:
        return 0.0, "neutral"
    return min(1.0, abs(value) / colours["scale"]), ("neg" if value < 0 else "pos")


def png_size(path) -> tuple[int, int]:
    """Width and height from a PNG's header, after checking its signature."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_every_figure_of_an_example_page_downloads_a_valid_file(browser, sample_site):
    """The heatmap (Plotly's PNG button and the SVG one added to it), the model view and the token
    view, saved from a page under a sub-path: SVG that parses with the figure's elements, PNG at
    twice the SVG's size with the figure drawn in it (the model view's PNG is rendered from its SVG)."""
    from PIL import Image

    base, site = sample_site.base, sample_site.site
    example = json.loads((site / "report.json").read_text())["examples"][0]
    page, problems, outside = open_page(browser, f"{base}/site/{example['page']}#layer=1&head=0")
    page.wait_for_selector("#heatmap .main-svg")
    page.wait_for_selector("#model-view canvas.thumb")
    ns = "{http://www.w3.org/2000/svg}"

    def download(selector):
        with page.expect_download() as info:
            page.click(selector)
        return info.value.suggested_filename, Path(info.value.path())

    page.hover("#heatmap .main-svg")
    name, path = download("#heatmap .modebar-btn[data-title='Download plot as a PNG']")
    assert name == "attention-layer1-head0.png"
    width, height = png_size(path)
    assert width > 400 and height > 400 and path.stat().st_size > 5000
    name, path = download("#heatmap .modebar-btn[data-title='Download as SVG']")
    assert name == "attention-layer1-head0.svg"
    svg = ET.parse(path).getroot()
    assert svg.tag == f"{ns}svg" and svg.findall(f".//{ns}image")  # Plotly draws the heatmap as an image

    name, path = download("#mv-svg")
    assert name == "model-view.svg"
    svg = ET.parse(path).getroot()
    images = svg.findall(f".//{ns}image")
    assert sorted((i.get("data-layer"), i.get("data-head")) for i in images) == sorted(
        (str(layer), str(head)) for layer in range(2) for head in range(4)
    )
    labels = [t.text for t in svg.iter(f"{ns}text")]
    assert labels == ["H0", "H1", "H2", "H3", "L0", "L1"]
    name, path = download("#mv-png")
    assert name == "model-view.png"
    assert png_size(path) == (2 * int(svg.get("width")), 2 * int(svg.get("height")))
    grid = np.asarray(Image.open(path).convert("RGB")).astype(int)
    first = images[0]
    x, y, cell = (2 * int(float(first.get(k))) for k in ("x", "y", "width"))
    thumb = grid[y + 4 : y + cell - 4, x + 4 : x + cell - 4]
    background = grid[2, 2]
    assert (np.abs(thumb - background).max(axis=-1) > 40).mean() > 0.5  # the thumbnail is in the PNG

    name, path = download("#tok-png")
    assert name == f"tokens-{page.input_value('#view')}.png"
    width, height = png_size(path)
    assert width > 100 and height > 20
    # Plotly's PNG export loads its own blob: URL (page-local, not the network)
    assert problems == [] and [u for u in outside if not u.startswith(f"blob:{base}/")] == []
    page.close()


def test_an_example_template_without_head_and_model_view_still_works(browser, tiny, tmp_path, served):
    """A user's own example.html.j2 may leave out the head view and the model view (figure and
    controls): the other figures draw and follow the controls, and nothing fails."""
    from attnreport.core.resources import bundled

    template = (bundled("templates") / "example.html.j2").read_text(encoding="utf-8")
    mine = re.sub(
        r'  <h3 id="head-view-title">.*?<div id="head-view"[^>]*></div>\n', "", template, flags=re.S
    )
    mine = re.sub(r'<section class="card">\s*<h2>Model view.*?</section>\n', "", mine, flags=re.S)
    assert "head-view" not in mine and "model-view" not in mine and "mv-png" not in mine
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "example.html.j2").write_text(mine, encoding="utf-8")
    root, base = served
    config = load_config(write_config(tmp_path / "p", tiny.export("bert"), sample_rows()))
    config.site.templates = folder
    site = build(config, root / "site", progress=False).site
    example = json.loads((site / "report.json").read_text())["examples"][0]
    page, problems, outside = open_page(browser, f"{base}/site/{example['page']}")
    page.wait_for_selector("#heatmap .main-svg")
    assert page.locator("#head-view, #model-view, #hv-png, #mv-png").count() == 0
    page.select_option("#layer", "0")
    page.select_option("#head", "3")
    assert page.get_attribute("#heatmap", "data-head") == "3"
    assert page.locator("#tokens .token").count() == len(example["tokens"])
    with page.expect_download() as info:
        page.click("#tok-svg")
    assert ET.parse(info.value.path()).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    assert problems == [] and outside == []
    page.close()


def test_model_view_grid_labels_its_layers_and_heads_on_the_page(browser, sample_site):
    """The on-page grid, not only its saved SVG: "H<h>" over each column of thumbnails, "L<l>"
    beside each row, every label clear of the others and of the thumbnails."""
    page, problems, _ = open_page(browser, f"{sample_site.base}/site/examples/p0.html")
    page.wait_for_selector("#model-view canvas.thumb")
    boxes = page.eval_on_selector_all(
        "#model-view > *",
        """els => els.map(e => { const r = e.getBoundingClientRect();
            return {cls: e.className, text: e.textContent, layer: e.dataset.layer, head: e.dataset.head,
                    x0: r.left, x1: r.right, y0: r.top, y1: r.bottom}; })""",
    )
    thumbs = [b for b in boxes if b["cls"] == "thumb"]
    heads = {b["text"]: b for b in boxes if "mv-head" in b["cls"]}
    layers = {b["text"]: b for b in boxes if "mv-layer" in b["cls"]}
    assert sorted(heads) == [f"H{h}" for h in range(4)] and sorted(layers) == ["L0", "L1"]
    for t in thumbs:
        head, layer = heads[f"H{t['head']}"], layers[f"L{t['layer']}"]
        assert t["x0"] <= (head["x0"] + head["x1"]) / 2 <= t["x1"] and head["y1"] <= t["y0"]
        assert layer["x1"] <= t["x0"] and t["y0"] <= (layer["y0"] + layer["y1"]) / 2 <= t["y1"]
    shown = [b for b in boxes if b["text"]] + thumbs
    for i, a in enumerate(shown):
        assert a["x1"] > a["x0"] and a["y1"] > a["y0"]
        for b in shown[i + 1 :]:
            apart = a["x1"] <= b["x0"] or b["x1"] <= a["x0"] or a["y1"] <= b["y0"] or b["y1"] <= a["y0"]
            assert apart, (a, b)
    assert problems == []
    page.close()


def test_head_pages_picture_the_head_and_link_their_neighbours(browser, tiny, tmp_path, sample_site):
    """A head page: previous / next head in atlas order, and the head's attention on its typical
    examples, each cell's shade the weight over its row's largest, recomputed here from a fresh trace."""
    from attnreport.site.headpages import PICTURES
    from attnreport.trace import Tracer

    base = sample_site.base
    rows = sample_rows()  # plain and hostile texts: a typical example may have a hostile id
    report = json.loads((sample_site.site / "report.json").read_text())
    heads = [(h["layer"], h["head"]) for h in report["heads"]]
    traces = {
        r["id"]: t
        for r, t in zip(
            rows,
            Tracer(tiny.export("bert"), cache_dir=tmp_path / "c").trace_texts([r["text"] for r in rows]),
            strict=True,
        )
    }
    for i in (0, 5, len(heads) - 1):
        layer, head = heads[i]
        page, problems, outside = open_page(browser, f"{base}/site/heads/L{layer}-H{head}.html")
        prev = page.locator("a[rel=prev]")
        nxt = page.locator("a[rel=next]")
        if i == 0:
            assert prev.count() == 0
        else:
            assert prev.get_attribute("href") == "../heads/L{}-H{}.html".format(*heads[i - 1])
        if i == len(heads) - 1:
            assert nxt.count() == 0
        else:
            assert nxt.get_attribute("href") == "../heads/L{}-H{}.html".format(*heads[i + 1])
        typical = report["heads"][i]["typical"][:PICTURES]
        page.wait_for_function(
            "n => document.querySelectorAll('figure.head-picture[data-state=drawn]').length === n",
            arg=len(typical),
        )
        for example_id in typical:
            figure = f"figure.head-picture[data-id='{example_id}']"
            trace = traces[example_id]
            a = trace.attentions[layer, head].astype(np.float64)
            n = trace.n_tokens
            shades = np.array(
                page.eval_on_selector_all(
                    f"{figure} rect.cell", "els => els.map(e => +e.getAttribute('fill-opacity'))"
                )
            )
            assert shades.size == n * n
            want = a / a.max(axis=1, keepdims=True)
            assert (
                np.abs(shades.reshape(n, n) - want).max()
                < 2.5 / 255 / a.max(axis=1, keepdims=True).min() + 1e-3
            )
            keys = page.eval_on_selector_all(f"{figure} text.key", "els => els.map(e => e.textContent)")
            assert len(keys) == n and keys[0] == trace.tokens[0]
        assert problems == [] and outside == []
        page.close()
