"""The neuron view: queries and keys exported with --with-qk, traced, and drawn on example pages.

Known answers: the softmax of q·kᵀ·scale (written out here, with the causal mask) is the traced
attention; the traced queries and keys are PyTorch's own projections (rotary applied with
transformers' function, key heads repeated with its repeat_kv); the page's dot products are those
of the vectors it was given.
"""

from __future__ import annotations

import base64
import json
import shutil
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
from sitebuild import write_config

from attnreport.core.config import load_config
from attnreport.core.modelcard import ModelCard
from attnreport.site.encode import packed_signed, script_json, unpack_signed
from attnreport.trace.runner import Tracer

FAMILIES = ("bert", "gpt2", "llama", "qwen2")
#: texts of different lengths, so every batch is padded
TEXTS = [
    "refill please",
    "the card was charged twice for the same order",
    "lock my account now someone is using my card",
    "where is my parcel",
]


class QKExports:
    """--with-qk exports of the tiny models (no generation graphs: not what is tested), made once.
    The GPT-2 scales its scores by the inverse layer index too, so each layer's scale differs."""

    def __init__(self, tiny) -> None:
        self.tiny = tiny
        self.done: dict[str, Path] = {}

    def checkpoint(self, family: str) -> Path:
        source = self.tiny.checkpoint(family)
        if family != "gpt2":
            return source
        folder = self.tiny.root / "checkpoint-gpt2-inverse"
        if not folder.exists():
            shutil.copytree(source, folder)
            config = json.loads((folder / "config.json").read_text())
            config["scale_attn_by_inverse_layer_idx"] = True
            (folder / "config.json").write_text(json.dumps(config))
        return folder

    def __call__(self, family: str) -> Path:
        if family not in self.done:
            from attnreport.export import export_model

            out = self.tiny.root / f"export-{family}-qk"
            export_model(self.checkpoint(family), out, with_qk=True, generation=False)
            self.done[family] = out
        return self.done[family]


@pytest.fixture(scope="module")
def qk_export(tiny):
    return QKExports(tiny)


def softmax_reference(queries, keys, scales, *, causal: bool) -> np.ndarray:
    """softmax(q·kᵀ·scale + mask) per layer and head, the mask -inf above the diagonal when causal."""
    scores = np.einsum("lhid,lhjd->lhij", queries.astype(np.float64), keys.astype(np.float64))
    scores *= np.asarray(scales)[:, None, None, None]
    n = scores.shape[-1]
    if causal:
        scores = scores + np.triu(np.full((n, n), -np.inf), k=1)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_softmax_of_traced_queries_and_keys_is_the_traced_attention(qk_export, family, cache_dir):
    folder = qk_export(family)
    card = ModelCard.load(folder)
    assert card.qk is not None and card.qk.softmax_diff <= 1e-4
    assert set(card.max_abs_diff) >= {"queries", "keys"}
    traces = Tracer(folder, batch_size=3, cache_dir=cache_dir).trace_texts(TEXTS)
    worst = 0.0
    for trace in traces:
        L, H, n = trace.attentions.shape[:3]
        assert trace.queries.shape == trace.keys.shape == (L, H, n, card.qk.head_dim)
        want = softmax_reference(trace.queries, trace.keys, card.qk.scales, causal=card.causal)
        worst = max(worst, float(np.max(np.abs(want - trace.attentions))))
    print(f"{family}: max |softmax(q·k·scale + mask) - attention| = {worst:.1e}")
    assert worst < 1e-4
    if family in ("llama", "qwen2"):  # 2 key heads for 4 query heads: heads 0, 1 read key head 0
        k = traces[1].keys
        assert card.qk.kv_heads == 2
        assert np.array_equal(k[:, 0], k[:, 1]) and np.array_equal(k[:, 2], k[:, 3])
        assert not np.allclose(k[:, 0], k[:, 2])


def _pytorch_qk(checkpoint: Path, family: str, text_ids: list[int]):
    """Queries and keys [L, H, n, d] from PyTorch forward hooks on the projections: rotary applied
    with the model family's apply_rotary_pos_emb, key heads repeated with its repeat_kv."""
    import importlib

    import torch
    import transformers as T

    auto = T.AutoModelForSequenceClassification if family == "bert" else T.AutoModelForCausalLM
    model = auto.from_pretrained(str(checkpoint), attn_implementation="eager").eval()
    cfg = model.config
    H = cfg.num_attention_heads
    d = cfg.hidden_size // H
    seen: dict[str, list] = {"q": [], "k": []}

    def keep(kind, split=None):
        def hook(module, args, out):
            seen[kind].append(out if split is None else out.split(cfg.hidden_size, dim=-1)[split])

        return hook

    if family == "bert":
        for layer in model.bert.encoder.layer:
            layer.attention.self.query.register_forward_hook(keep("q"))
            layer.attention.self.key.register_forward_hook(keep("k"))
    elif family == "gpt2":
        for block in model.transformer.h:
            block.attn.c_attn.register_forward_hook(keep("q", 0))
            block.attn.c_attn.register_forward_hook(keep("k", 1))
    else:
        for layer in model.model.layers:
            layer.self_attn.q_proj.register_forward_hook(keep("q"))
            layer.self_attn.k_proj.register_forward_hook(keep("k"))
    ids = torch.tensor([text_ids])
    with torch.no_grad():
        model(input_ids=ids)
        n = len(text_ids)
        qs = [q.view(1, n, -1, d).transpose(1, 2) for q in seen["q"]]
        ks = [k.view(1, n, -1, d).transpose(1, 2) for k in seen["k"]]
        if family in ("llama", "qwen2"):
            mod = importlib.import_module(type(model).__module__)
            cos, sin = model.model.rotary_emb(qs[0], torch.arange(n)[None])
            pairs = [mod.apply_rotary_pos_emb(q, k, cos, sin) for q, k in zip(qs, ks, strict=True)]
            groups = H // cfg.num_key_value_heads
            qs = [q for q, _ in pairs]
            ks = [mod.repeat_kv(k, groups) for _, k in pairs]
    return torch.cat(qs).numpy(), torch.cat(ks).numpy()


@pytest.mark.parametrize("family", FAMILIES)
def test_traced_queries_and_keys_are_pytorchs(qk_export, family, cache_dir):
    tracer = Tracer(qk_export(family), batch_size=4, cache_dir=cache_dir)
    for trace in tracer.trace_texts(TEXTS[1:3]):
        ids = tracer.tokenizer.encode(trace.text).ids
        ids = [*tracer.tokenizer.prefix_ids, *ids, *tracer.tokenizer.suffix_ids]
        q, k = _pytorch_qk(qk_export.checkpoint(family), family, ids)
        for name, got, want in (("queries", trace.queries, q), ("keys", trace.keys, k)):
            assert got.shape == want.shape, name
            assert np.max(np.abs(got - want)) <= 1e-4 * max(1.0, float(np.max(np.abs(want)))), name


def test_gpt2_scaled_by_inverse_layer_index_records_each_layers_scale(qk_export, cache_dir):
    card = ModelCard.load(qk_export("gpt2"))
    d = card.qk.head_dim
    assert card.qk.scales == pytest.approx([d**-0.5 / (layer + 1) for layer in range(card.layers)])
    for trace in Tracer(qk_export("gpt2"), cache_dir=cache_dir).trace_texts(TEXTS):
        # the common 1/sqrt(d) would not reproduce the attention: the recorded scales matter
        wrong = softmax_reference(trace.queries, trace.keys, [d**-0.5] * card.layers, causal=True)
        assert np.max(np.abs(wrong - trace.attentions)) > 1e-3


def test_an_export_without_qk_keeps_its_outputs_and_its_cache_key(tiny, qk_export, cache_dir):
    import onnxruntime as ort

    plain, with_qk = tiny.export("bert"), qk_export("bert")

    def outputs(folder):
        session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        return [o.name for o in session.get_outputs()]

    assert outputs(plain) == ["logits", "attentions", "hidden_states"]
    assert outputs(with_qk) == ["logits", "attentions", "hidden_states", "queries", "keys"]
    assert ModelCard.load(plain).qk is None
    assert "qk" not in json.loads((plain / "attnreport.json").read_text()) or (
        json.loads((plain / "attnreport.json").read_text())["qk"] is None
    )
    tracer = Tracer(plain, cache_dir=cache_dir, qk_max_tokens=5)
    assert "qk_max_tokens" not in tracer.key  # the option leaves other exports' caches alone
    (trace,) = tracer.trace_texts(TEXTS[:1])
    assert trace.queries is None and trace.keys is None
    overhead = (with_qk / "model.onnx").stat().st_size - (plain / "model.onnx").stat().st_size
    print(f"model.onnx grows by {overhead} bytes with --with-qk")


def test_queries_and_keys_are_kept_within_the_limit_in_one_window_and_cached(qk_export, cache_dir):
    folder = qk_export("bert")
    short, long = TEXTS[0], TEXTS[1] + " " + TEXTS[2]
    first = Tracer(folder, cache_dir=cache_dir, qk_max_tokens=8)
    a, b = first.trace_texts([short, long])
    assert a.queries is not None and a.n_tokens <= 8
    assert b.queries is None and b.n_tokens > 8
    again = Tracer(folder, cache_dir=cache_dir, qk_max_tokens=8)
    (cached,) = again.trace_texts([short])
    assert again.stats.cached == 1 and np.array_equal(cached.keys, a.keys)
    wider = Tracer(folder, cache_dir=cache_dir, qk_max_tokens=64)
    assert wider.key != first.key
    windowed = Tracer(folder, cache_dir=cache_dir, qk_max_tokens=64, window=12, stride=4)
    (w,) = windowed.trace_texts([long])
    assert w.windows and w.queries is None

    from attnreport.site.neuron import neuron_data

    card = ModelCard.load(folder)
    assert "windows" in neuron_data(w, card)["skipped"]
    assert f"{b.n_tokens} tokens" in neuron_data(b, card)["skipped"]
    block = neuron_data(a, card)
    assert block["scales"] == card.qk.scales and block["causal"] is False


def test_signed_vectors_round_trip_within_half_a_step_of_each_vector():
    rng = np.random.default_rng(0)
    # vectors of very different sizes, one all zero, one with a single non-zero entry
    values = rng.normal(size=(2, 3, 5, 16)) * rng.lognormal(sigma=2.0, size=(2, 3, 5, 1))
    values[0, 0, 0] = 0.0
    values[0, 0, 1] = 0.0
    values[0, 0, 1, 3] = -7.5
    block = json.loads(script_json(packed_signed(values)))  # as the page receives it
    back = unpack_signed(block)
    peak = np.max(np.abs(values), axis=-1, keepdims=True)
    error = np.abs(back - values)
    assert np.all(error <= peak / 254 * (1 + 1e-5) + 1e-30)
    assert np.all(back[0, 0, 0] == 0.0) and back[0, 0, 1, 3] == pytest.approx(-7.5, rel=1e-6)
    assert error.max() > 0  # quantised, not stored whole
    raw = zlib.decompress(base64.b64decode(block["data"]))
    q = np.frombuffer(raw[4 * 2 * 3 * 5 :], dtype=np.int8)
    assert q.size == values.size and np.abs(q).max() == 127


# --- the page, in Chromium -------------------------------------------------------------------


def _site(folder: Path, tmp_path: Path, root: Path, rows: list[dict], max_tokens: int = 64):
    from attnreport.pipeline import build

    config = load_config(
        write_config(
            tmp_path / "p", folder, rows, extra="[analysis]\nattributions = []\n[site]\nscenes = false\n"
        )
    )
    config.model.neuron_view_max_tokens = max_tokens
    return build(config, root / "site", progress=False).site


def _open(browser, url):
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(url.split("/site/")[0]) else outside.append(r.url))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems, outside


def _rows(page):
    return page.eval_on_selector_all(
        "#neuron-view svg g[data-k]",
        "gs => gs.map(g => [+g.dataset.k, +g.dataset.score, +g.dataset.attention,"
        " g.querySelector('[data-role=score]').textContent])",
    )


@pytest.mark.parametrize("family", ["llama", "bert", "gpt2"])
def test_neuron_view_shows_the_dot_products_of_the_page_data(
    browser, qk_export, family, tmp_path, served, cache_dir
):
    root, base = served
    folder = qk_export(family)
    card = ModelCard.load(folder)
    text = '<img src=x onerror="window.__pwned=2"> card charged twice'
    rows = [
        {"id": "short", "text": text, "label": "alpha"},
        {"id": "long", "text": text + " " + TEXTS[0], "label": "beta"},
    ]
    # the short text's vectors are kept, the long one's not (both fit the model in one window)
    limit = len(Tracer(folder, use_cache=False).trace_texts([text])[0].tokens)
    site = _site(folder, tmp_path, root, rows, max_tokens=limit)
    report = json.loads((site / "report.json").read_text())
    short, long = report["examples"]
    layer, head, query = 1, 3, 4
    page, problems, outside = _open(browser, f"{base}/site/{short['page']}#layer={layer}&head={head}")
    page.wait_for_selector("#neuron-view svg")
    page.select_option("#nv-query", str(query))
    page.wait_for_selector(f"#neuron-view svg[data-query='{query}']")
    data = json.loads(page.text_content("#example-data"))
    n = data["n"]
    q = unpack_signed(data["neuron"]["queries"])[layer, head, query]
    k = unpack_signed(data["neuron"]["keys"])[layer, head]
    a = np.frombuffer(zlib.decompress(base64.b64decode(data["attention"]["data"])), np.uint8)
    a = (a.reshape(data["attention"]["shape"])[layer, head, query] / 255) ** 2  # square roots stored
    shown = _rows(page)
    visible = list(range(query + 1)) if card.causal else list(range(n))
    assert [r[0] for r in shown] == visible  # the causal mask hides the keys after the query
    scores = k[visible] @ q * card.qk.scales[layer]
    got = np.array([r[1] for r in shown])
    np.testing.assert_allclose(got, scores, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose([r[2] for r in shown], a[visible], atol=1e-6)
    # the numbers are the float trace's within the 8-bit storage, and their softmax the attention
    (trace,) = Tracer(folder, cache_dir=cache_dir, qk_max_tokens=limit).trace_texts([text])
    exact = trace.keys[layer, head, visible] @ trace.queries[layer, head, query] * card.qk.scales[layer]
    bound = card.qk.scales[layer] * (
        np.abs(trace.keys[layer, head, visible]).max(axis=1) * np.abs(q).max() / 254 * len(q) * 2
    )
    assert np.all(np.abs(got - exact) <= bound + 1e-7)
    e = np.exp(exact - exact.max())
    np.testing.assert_allclose(e / e.sum(), trace.attentions[layer, head, query, visible], atol=1e-4)
    # the printed score is the drawn one, rounded
    # (three significant digits; two below 0.001, printed as 1.2e-4)
    assert all(abs(float(r[3]) - r[1]) <= (0.006 if abs(r[1]) >= 1e-3 else 0.06) * abs(r[1]) for r in shown)
    # the cells: the query's row is q's signs and magnitudes
    cells = page.eval_on_selector_all(
        "#neuron-view g[data-kind=q] rect", "rs => rs.map(r => [r.getAttribute('fill'), +r.dataset.v])"
    )
    assert [c[1] for c in cells] == pytest.approx(q, rel=1e-3, abs=1e-6)
    assert all((fill == "#0072b2") == (v >= 0) for fill, v in cells)
    if card.qk.kv_heads < card.heads:
        assert "reads key head 1" in page.text_content("#nv-note")
    if family == "gpt2":  # layer 1's scores are halved again (scale_attn_by_inverse_layer_idx)
        assert "× 0.500, this layer's own factor" in page.text_content("#nv-note")
    # saved as SVG and PNG, named after the layer, head and query
    with page.expect_download() as info:
        page.click("#nv-svg")
    assert info.value.suggested_filename == f"neuron-view-layer{layer}-head{head}-query{query}.svg"
    svg = ET.parse(info.value.path()).getroot()
    assert len(svg.findall(".//{http://www.w3.org/2000/svg}g[@data-k]")) == len(visible)
    with page.expect_download() as info:
        page.click("#nv-png")
    assert info.value.suggested_filename.endswith(".png")
    head_bytes = Path(info.value.path()).read_bytes()[:24]
    assert head_bytes[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(head_bytes[16:20], "big") == 2 * int(svg.get("width"))
    # tokens are text: the markup in the text runs nowhere and shows as characters
    labels = page.eval_on_selector_all("#neuron-view g[data-k] > text", "ts => ts.map(t => t.textContent)")
    assert page.evaluate("window.__pwned") is None and page.locator("#neuron-view img").count() == 0
    assert any("<" in t or "img" in t for t in labels + [page.text_content("#nv-query")])
    # the mean of heads has no single query and key: the view says so
    page.select_option("#head", "mean")
    assert "one head" in page.text_content("#neuron-view")
    assert problems == [] and outside == []
    page.close()
    # a text over the limit: no vectors on its page, and the page says why
    assert "neuron" in json.loads(
        (site / long["page"]).read_text().split('id="example-data">')[1].split("</script>")[0]
    )
    page, problems, _ = _open(browser, f"{base}/site/{long['page']}")
    page.wait_for_selector("#neuron-view p")
    assert "more than [model] neuron_view_max_tokens" in page.text_content("#neuron-view")
    assert page.is_hidden("#nv-controls") and problems == []
    page.close()


def test_pages_of_exports_without_qk_have_no_neuron_view(tiny, tmp_path, served):
    root, _ = served
    site = _site(tiny.export("bert"), tmp_path, root, [{"id": "a", "text": TEXTS[0], "label": "alpha"}])
    html = next((site / "examples").glob("*.html")).read_text()
    assert "neuron-view" not in html and "neuronview.js" not in html and '"neuron"' not in html


def test_a_hugging_face_folder_in_a_config_with_with_qk_is_exported_with_queries_and_keys(tiny, tmp_path):
    from attnreport.pipeline import checkpoint_key, resolve_model

    checkpoint = tiny.checkpoint("bert")
    folder = resolve_model(checkpoint, tmp_path / "cache", with_qk=True, log=lambda m: None)
    assert ModelCard.load(folder).qk is not None
    # beside, not instead of, the export without them
    assert folder.name == checkpoint_key(checkpoint) + "-qk"


def test_the_model_options_load_and_a_bad_limit_is_refused(tmp_path):
    from attnreport.core.errors import ConfigError

    (tmp_path / "m").mkdir()
    good = tmp_path / "good.toml"
    good.write_text(
        '[model]\npath = "m"\nwith_qk = true\nneuron_view_max_tokens = 32\n[data]\ntexts = ["a"]\n'
    )
    config = load_config(good)
    assert config.model.with_qk is True and config.model.neuron_view_max_tokens == 32
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\npath = "m"\nneuron_view_max_tokens = -1\n[data]\ntexts = ["a"]\n')
    with pytest.raises(ConfigError, match="neuron_view_max_tokens"):
        load_config(bad)
