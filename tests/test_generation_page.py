"""Generation pages in real Chromium: the chosen answer token shades the input by the attention in
the page's data, hostile prompts stay text, figures save, nothing is fetched from outside."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from sitebuild import HOSTILE
from test_browser import check_lines_match, open_page

from attnreport.analysis.generation import step_rollout
from attnreport.core.generation import GenerationTrace
from attnreport.kinds.generation import plan_from_generations
from attnreport.site.build import write_site
from attnreport.testing import model_card

LAYERS, HEADS = 2, 2


def generation(rng, id: str, prompt: str, answer: list[str], *, template: int = 2) -> GenerationTrace:
    """A prompt of characters wrapped in `template` template tokens, with planted peaked attention."""
    words = prompt.split(" ")
    tokens = ["<|user|>"] * (template - 1) + ["\n"] + words
    n, steps = len(tokens), len(answer)
    offsets, at = [], 0
    text = "".join(tokens[:template]) + prompt
    at = len("".join(tokens[:template]))
    offsets = [(0, 0)] * (template - 1) + [(at - 1, at)]
    for w in words:
        offsets.append((at, at + len(w)))
        at += len(w) + 1
    keys = n + steps - 1
    rows = rng.dirichlet(np.full(keys, 0.2), size=(LAYERS, HEADS, steps))
    for t in range(steps):
        rows[:, :, t, n + t :] = 0
        rows[:, :, t, (t * 3) % (n + t)] += 2.0  # a clear peak per step
    rows /= rows.sum(axis=-1, keepdims=True)
    prompt_rows = np.tril(rng.random((LAYERS, HEADS, n, n))) + np.eye(n)
    prompt_rows /= prompt_rows.sum(axis=-1, keepdims=True)
    rows[:, :, 0, :n] = prompt_rows[:, :, n - 1, :]
    probs = rng.uniform(0.2, 0.95, steps)
    return GenerationTrace(
        id=id,
        prompt=prompt,
        text=text,
        prompt_tokens=tokens,
        prompt_ids=np.arange(n),
        prompt_offsets=offsets,
        special=[i < template - 1 for i in range(n)],
        from_template=[i < template for i in range(n)],
        tokens=answer,
        ids=np.arange(steps) + 100,
        answer="".join(answer),
        probability=probs,
        entropy=rng.uniform(0, 2, steps),
        rank=np.zeros(steps, dtype=int),
        top_ids=np.tile(np.arange(3), (steps, 1)),
        top_probabilities=np.sort(rng.random((steps, 3)), axis=1)[:, ::-1],
        top_tokens=[[a, "<b>alt</b>", "x"] for a in answer],
        attentions=rows,
        hidden=np.zeros((LAYERS + 1, steps, 4)),
        prompt_attentions=prompt_rows,
        lens_probability=rng.random((LAYERS + 1, steps)),
        lens_rank=rng.integers(0, 5, (LAYERS + 1, steps)),
        lens_top_ids=np.zeros((LAYERS + 1, steps, 1)),
        lens_top_probabilities=rng.random((LAYERS + 1, steps, 1)),
        lens_top_tokens=[[[f"L{layer}<i>{t}</i>"] for t in range(steps)] for layer in range(LAYERS + 1)],
        stop_reason="eos",
        template="chatml",
    )


@pytest.fixture(scope="module")
def generation_site(tmp_path_factory):
    rng = np.random.default_rng(0)
    traces = [generation(rng, "apple", "苹果公司 成立于 哪一年?", ["苹果", "是", "一种", "水果", "。"])]
    traces += [generation(rng, f"h{i}", text, ["<b>", "ok", "</script>"]) for i, text in enumerate(HOSTILE)]
    root = tmp_path_factory.mktemp("gen")
    card = model_card(
        architecture="Qwen2ForCausalLM",
        task="causal-lm",
        labels=[],
        causal=True,
        read_position="last",
        layers=LAYERS,
        heads=HEADS,
    )
    plan = plan_from_generations(iter(traces), card, title="Generation <b>test</b>", spool=root / "spool")
    return write_site(plan, root / "site"), traces


def shades(page) -> list[float]:
    script = "els => els.map(e => parseFloat(e.style.getPropertyValue('--w') || '0'))"
    return page.eval_on_selector_all("#g-tokens .token", script)


def test_choosing_an_answer_token_shades_the_input_by_its_attention(browser, generation_site, served):  # noqa: F811
    site, traces = generation_site
    root, base = served
    (root / "site").symlink_to(site, target_is_directory=True)
    page, problems, outside = open_page(browser, f"{base}/site/examples/apple.html")
    page.wait_for_selector("body[data-generation-ready]")
    trace = traces[0]
    n = trace.n_prompt
    page.select_option("#g-layer", "1")
    page.select_option("#g-head", "0")
    page.click('#g-tokens button[data-step="2"]')
    got = np.array(shades(page))
    want = trace.attentions[1, 0, 2, : n + 2]
    np.testing.assert_allclose(got[: n + 2], want / want.max(), atol=2.5 / 255 / want.max())
    assert (got[n + 2 :] == 0).all()  # the answer from the chosen token on is not yet written
    assert page.locator("#g-tokens .token.later").count() == trace.steps - 2
    # rollout: every layer, as the analysis computes it from the whole causal attention
    page.select_option("#g-layer", "rollout")
    roll = step_rollout(trace)[2, : n + 2]
    got = np.array(shades(page))[: n + 2]
    np.testing.assert_allclose(got, roll / roll.max(), atol=2.5 / 255 / roll.max())
    # the keyboard moves the choice, and the address keeps it
    page.focus('#g-tokens button[data-step="2"]')
    page.keyboard.press("ArrowRight")
    assert page.get_attribute('#g-tokens button[data-step="3"]', "aria-pressed") == "true"
    assert page.evaluate("location.hash") == "#step=3"
    alternatives = page.eval_on_selector_all("#g-top th", "els => els.map(e => e.textContent)")
    assert alternatives == ["水果", "<b>alt</b>", "x"]
    lens = page.eval_on_selector_all("#g-lens text", "els => els.map(e => e.textContent)")
    cells = page.eval_on_selector_all("#g-lens rect title", "els => els.map(e => e.textContent)")
    assert "L2<i>3</i>"[:8] in lens and "embeddings" in lens and len(cells) == (LAYERS + 1) * trace.steps
    assert any(c.startswith("layer 2, token 3: top «L2<i>3</i>»") for c in cells)
    assert problems == [] and outside == []


def test_hostile_prompts_and_tokens_render_as_text_and_figures_save(browser, generation_site, served):  # noqa: F811
    site, traces = generation_site
    root, base = served
    (root / "site").symlink_to(site, target_is_directory=True)
    report = json.loads((site / "report.json").read_text(encoding="utf-8"))
    assert report["kind"] == "generation" and len(report["examples"]) == len(traces)
    for entry in report["examples"]:
        page, problems, outside = open_page(browser, f"{base}/site/{entry['page']}")
        page.wait_for_selector("body[data-generation-ready]")
        assert page.evaluate("window.__pwned") is None
        assert page.locator(".source-text").first.text_content() == entry["text"]
        assert problems == [] and outside == []
        page.close()
    page, _, _ = open_page(browser, f"{base}/site/{report['examples'][1]['page']}")
    page.wait_for_selector("body[data-generation-ready]")
    for button in ("#g-tok-svg", "#g-steps-svg", "#g-lens-svg"):
        with page.expect_download() as download:
            page.click(button)
        svg = ET.fromstring(Path(download.value.path()).read_bytes())
        assert svg.tag.endswith("svg") and len(list(svg.iter("{http://www.w3.org/2000/svg}text"))) > 3
    with page.expect_download() as download:
        page.click("#g-lens-png")
    assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    index, problems, _ = open_page(browser, f"{base}/site/index.html")
    rows = index.eval_on_selector_all("#examples tbody tr", "rows => rows.map(r => r.cells.length)")
    assert rows == [6] * len(traces) and problems == []
    assert index.evaluate("window.__pwned") is None


def page_rows(page) -> np.ndarray:
    """The page's own answer rows, decoded as its script does: uint8, deflated, base64, [L, H, T, K]."""
    block = json.loads(page.text_content("#generation-data"))["attention"]
    assert block["encoding"] == "uint8-sqrt-deflate-base64"  # square roots, as bytes
    q = np.frombuffer(zlib.decompress(base64.b64decode(block["data"])), dtype=np.uint8)
    return (q.reshape(block["shape"]).astype(np.float64) * block["scale"]) ** 2


def test_heatmap_head_view_and_model_view_draw_the_answer_rows(browser, generation_site, served):  # noqa: F811
    site, traces = generation_site
    root, base = served
    (root / "site").symlink_to(site, target_is_directory=True)
    page, problems, outside = open_page(browser, f"{base}/site/examples/apple.html#step=3")
    page.wait_for_selector("body[data-generation-ready]")
    page.wait_for_selector("#heatmap .main-svg")
    trace, rows = traces[0], page_rows(page)
    np.testing.assert_allclose(rows, trace.attentions, atol=1 / 255 + 1e-5)  # the stored rows are the trace's
    page.select_option("#g-layer", "1")
    page.select_option("#g-head", "0")
    z = np.array(page.evaluate("document.getElementById('heatmap').data[0].z"))
    assert z.shape == (trace.steps, trace.n_prompt + trace.steps - 1)
    np.testing.assert_allclose(z, trace.attentions[1, 0], atol=1 / 255 + 1e-5)
    outline = page.evaluate("document.getElementById('heatmap').layout.shapes[0]")
    assert (outline["y0"], outline["y1"]) == (2.5, 3.5)  # the chosen token's row
    # the head view's lines are the same rows' weights; the chosen token's lines stand out
    check_lines_match(page, rows[1, 0])
    on = page.eval_on_selector_all("#head-view line.on", "ls => ls.map(l => +l.parentNode.dataset.q)")
    assert on and set(on) == {3}
    labels = "ts => ts.map(t => t.firstChild.textContent)"
    queries = page.eval_on_selector_all("#head-view g[data-side=q] text", labels)
    assert queries == trace.tokens
    keys = page.eval_on_selector_all("#head-view g[data-side=k] text", "ts => ts.length")
    assert keys == trace.n_prompt + trace.steps - 1
    # the model view: one block per layer and head, T rows by K columns; a click chooses it
    thumbs = page.locator("#model-view canvas.thumb")
    assert thumbs.count() == LAYERS * HEADS
    size = page.eval_on_selector("#model-view canvas.thumb", "c => [c.height, c.width]")
    assert size == [trace.steps, trace.n_prompt + trace.steps - 1]
    page.click("#model-view canvas.thumb[data-layer='0'][data-head='1']")
    assert page.input_value("#g-layer") == "0" and page.input_value("#g-head") == "1"
    assert page.get_attribute("#heatmap", "data-layer") == "0"
    z = np.array(page.evaluate("document.getElementById('heatmap').data[0].z"))
    np.testing.assert_allclose(z, trace.attentions[0, 1], atol=1 / 255 + 1e-5)
    with page.expect_download() as download:
        page.click("#hv-svg")
    svg = ET.fromstring(Path(download.value.path()).read_bytes())
    assert len(list(svg.iter("{http://www.w3.org/2000/svg}line"))) > trace.steps
    with page.expect_download() as download:
        page.click("#mv-png")
    assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert problems == [] and outside == []


# ------------------------------------------------------------------ attention sinks and the views


@pytest.fixture(scope="module")
def sink_site(tmp_path_factory):
    """One answer whose every head parks 70% of each step's attention on position 0 (a planted
    sink), with value norms that make position 0 carry nothing."""
    rng = np.random.default_rng(5)
    trace = generation(rng, "sunk", "where did it look", ["a", "b", "c", "d"])
    rows = trace.attentions * 0.3
    rows[:, :, :, 0] += 0.7
    trace.attentions = rows
    trace.probability = np.array([0.9, 0.8, 0.15, 0.7], dtype=np.float32)  # least confident: step 2
    keys = trace.n_prompt + trace.steps - 1
    trace.value_norms = np.concatenate(
        [np.zeros((LAYERS, HEADS, 1)), rng.uniform(0.5, 2.0, (LAYERS, HEADS, keys - 1))], axis=-1
    ).astype(np.float32)
    root = tmp_path_factory.mktemp("sink")
    card = model_card(
        architecture="LlamaForCausalLM",
        task="causal-lm",
        labels=[],
        causal=True,
        read_position="last",
        layers=LAYERS,
        heads=HEADS,
    )
    plan = plan_from_generations(iter([trace]), card, title="Sinks", spool=root / "spool")
    return write_site(plan, root / "site"), trace


def test_the_page_opens_beyond_the_sink_on_its_least_confident_token(browser, sink_site, served):  # noqa: F811
    """The planted sink is named with its share; the default view sets it apart (each row
    renormalised over the rest, as computed here by hand); raw attention is one click away; the
    page opens on the least confident token and follows #step= when the address changes."""
    site, trace = sink_site
    root, base = served
    (root / "site").symlink_to(site, target_is_directory=True)
    entry = json.loads((site / "report.json").read_text(encoding="utf-8"))["examples"][0]["generation"]
    assert entry["attention_view"]["default"] == "beyond_sink"
    assert [s["position"] for s in entry["sinks"]["positions"]] == [0]
    for t, step in enumerate(entry["steps"]):
        assert step["sink_share"] == pytest.approx(trace.attentions[:, :, t, 0].mean(), abs=1e-6)
        assert step["looked_at"] and step["looked_at"][0]["position"] != 0
        # looked_at: the last layer beyond the sink, the writing position left out
        last = trace.attentions[-1, :, t, : trace.n_prompt - 1 + t].astype(np.float64).copy()
        last[:, 0] = 0
        last = (last / last.sum(-1, keepdims=True)).mean(0)
        assert step["looked_at"][0]["position"] == int(np.argmax(last))
    assert "Token 2, the least confident" in entry["glance"][0]
    page, problems, outside = open_page(browser, f"{base}/site/examples/sunk.html")
    page.wait_for_selector("body[data-generation-ready]")
    assert page.input_value("#g-view") == "beyond_sink"
    assert page.get_attribute('#g-tokens button[data-step="2"]', "aria-pressed") == "true"
    assert "Token 2, the least confident" in page.text_content("#g-glance")
    n = trace.n_prompt
    page.select_option("#g-layer", "1")
    page.select_option("#g-head", "0")
    want = trace.attentions[1, 0, 2, : n + 2].astype(np.float64).copy()
    share = trace.attentions[1, :, 2, 0].mean()
    want[0] = 0
    want /= want.sum()
    got = np.array(shades(page))[: n + 2]
    np.testing.assert_allclose(got, want / want.max(), atol=3.5 / 255 / want.max())
    note = page.text_content("#g-note")
    assert "position 0" in note and f"{share:.1%}" in note and "set apart" in note
    assert page.locator("#g-tokens .token.sink").count() == 1
    # raw attention: the sink is back, and fills the row
    page.select_option("#g-view", "attention")
    raw = trace.attentions[1, 0, 2, : n + 2]
    np.testing.assert_allclose(np.array(shades(page))[: n + 2], raw / raw.max(), atol=2.5 / 255 / raw.max())
    # norm-weighted: position 0 carries nothing (its value norm is 0)
    page.select_option("#g-view", "norm_weighted")
    assert shades(page)[0] == 0
    # the address moves the chosen token
    page.evaluate("location.hash = '#step=1'")
    page.wait_for_function(
        "document.querySelector('#g-tokens button[data-step=\"1\"]').getAttribute('aria-pressed') === 'true'"
    )
    assert problems == [] and outside == []
