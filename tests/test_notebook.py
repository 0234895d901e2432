"""attnreport.notebook: BertViz's calls as a drop-in, drawn by the site's figures.

Known answers: a planted head (each token attends to the one before it) drawn by a real notebook
run through a real Jupyter kernel, then opened in Chromium, must put its lines and its thumbnail's
brightest pixels where planted, with nothing fetched; BertViz's README calls, verbatim, on a small
BERT's real attentions; the neuron view's queries are PyTorch's own query projections; and the
module imports and draws with torch blocked.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

from attnreport.core.errors import InputError
from attnreport.notebook import head_view, model_view, neuron_view

REPO = Path(__file__).resolve().parent.parent
LAYERS, HEADS, N = 3, 4, 10
#: the planted head: every token attends to the one before it (the first to itself)
PLANTED = (1, 2)


def planted_attention() -> np.ndarray:
    """[L, H, n, n] rows summing to 1, each head different; layer 1 head 2 a previous-token head."""
    weights = np.random.default_rng(0).dirichlet(np.full(N, 0.3), size=(LAYERS, HEADS, N))
    weights[PLANTED] = np.eye(N, k=-1)
    weights[PLANTED][0, 0] = 1.0
    return weights.astype(np.float32)


def tokens() -> list[str]:
    # a hostile token: it must show as text, never run
    return [
        "[CLS]",
        "the",
        "Ġcat",
        "<img src=x onerror=window.__pwned=1>",
        "sat",
        "on",
        "the",
        "mat",
        ".",
        "[SEP]",
    ]


def frame_data(frame) -> dict:
    return json.loads(frame.text_content("#notebook-data"))


def unpacked(block: dict) -> np.ndarray:
    """A block's attention decoded as the page decodes it: square roots as uint8, deflated, base64."""
    assert block["encoding"] == "uint8-sqrt-deflate-base64"
    q = np.frombuffer(zlib.decompress(base64.b64decode(block["data"])), dtype=np.uint8)
    return (q.reshape(block["shape"]).astype(np.float64) * block["scale"]) ** 2


def srcdoc(markup: str) -> str:
    """The document inside an output's iframe, as the browser reads it."""
    import html

    return html.unescape(markup.split('srcdoc="', 1)[1].split('"', 1)[0])


def assert_self_contained(markup: str) -> None:
    """No script, style or image from elsewhere, outside or inside the frame (the SVG namespace
    URIs are names, not addresses)."""
    outer = re.sub(r'srcdoc="[^"]*"', 'srcdoc=""', markup)
    for doc in (outer, srcdoc(markup)):
        assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", doc, re.I)
        assert "cdn" not in doc.lower() and "require.js" not in doc and "@import" not in doc


def head_lines(frame) -> list[tuple[int, int, float]]:
    return frame.eval_on_selector_all(
        "#head-view g[data-q] line",
        "ls => ls.map(l => [+l.parentNode.dataset.q, +l.dataset.k, +l.getAttribute('stroke-opacity')])",
    )


def check_head_view(frame, weights: np.ndarray) -> None:
    """Every weight at or above the threshold is a line as opaque as the weight (to the strongest
    shown); at most one more per token, its strongest; each token's most opaque line goes to its argmax."""
    threshold = float(frame.get_attribute("#head-view svg", "data-threshold"))
    lines = head_lines(frame)
    drawn = {(q, k) for q, k, _ in lines}
    above = {tuple(ix) for ix in np.argwhere(weights >= threshold).tolist()}
    assert above <= drawn
    extra = drawn - above
    assert len({q for q, _ in extra}) == len(extra)
    for q, k, opacity in lines:
        assert opacity == pytest.approx(weights[q, k] / weights.max(), abs=1.5e-3)
    for q in range(len(weights)):
        mine = [(opacity, k) for qq, k, opacity in lines if qq == q]
        assert weights[q, max(mine)[1]] == pytest.approx(weights[q].max(), abs=1e-6), q


def run_notebook(cells: list[str]):
    """The cells executed by a real Jupyter kernel (nbclient), as a saved notebook holds them."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c)) for c in cells]
    nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    ).execute()
    return nbformat.reads(nbformat.writes(nb), as_version=4)  # saved and read back


def open_outputs(browser, tmp_path, outputs: list[str]):
    """The outputs' HTML in one page (as a notebook shows them), opened from a file in Chromium;
    every request and every error is recorded."""
    path = tmp_path / "outputs.html"
    path.write_text("<!doctype html><html><body>" + "".join(outputs) + "</body></html>", encoding="utf-8")
    page = browser.new_page()
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    frames = [f for f in page.frames if f != page.main_frame]
    for frame in frames:
        frame.wait_for_selector("body[data-ready=true]")
    return page, frames, problems, [u for u in requests if u != path.as_uri()]


def test_a_notebook_run_in_a_real_kernel_draws_the_planted_head_offline(browser, tmp_path):
    np.save(tmp_path / "attention.npy", planted_attention())
    nb = run_notebook(
        [
            f"""
            import sys
            sys.path.insert(0, {str(REPO)!r})
            import numpy as np
            from attnreport.notebook import head_view, model_view
            weights = np.load({str(tmp_path / "attention.npy")!r})
            attention = tuple(w[None] for w in weights)  # as transformers returns it: per layer [1, H, n, n]
            tokens = {tokens()!r}
            """,
            f"head_view(attention, tokens, layer={PLANTED[0]}, heads=[{PLANTED[1]}])",
            "model_view(attention, tokens)",
        ]
    )
    outputs = [nb.cells[i].outputs for i in (1, 2)]
    assert all(len(o) == 1 and o[0].output_type == "display_data" for o in outputs), outputs
    markup = [o[0].data["text/html"] for o in outputs]
    for m in markup:
        assert_self_contained(m)
    page, (head, model), problems, outside = open_outputs(browser, tmp_path, markup)
    ids = page.eval_on_selector_all(".attnreport-output", "els => els.map(e => e.id)")
    assert len(set(ids)) == 2
    weights = unpacked(frame_data(head)["blocks"][0]["attention"])
    assert np.abs(weights - planted_attention()).max() <= 1 / 255 + 1e-5

    # the head view opens on the planted head: one line per token, to the token before it
    assert head.get_attribute("#head-view svg", "data-layer") == "1"
    assert head.get_attribute("#head-view svg", "data-head") == "2"
    assert sorted((q, k) for q, k, _ in head_lines(head)) == [(0, 0)] + [(q, q - 1) for q in range(1, N)]
    check_head_view(head, weights[PLANTED])
    head.select_option("#head", "0")
    check_head_view(head, weights[1, 0])
    head.select_option("#layer", "2")
    check_head_view(head, weights[2, 0])
    head.select_option("#head", "mean")
    check_head_view(head, weights[2].mean(axis=0))
    # tokens are text: the hostile one shows literally and ran nothing
    labels = head.eval_on_selector_all(
        "#head-view g[data-side=q] text", "ts => ts.map(t => t.querySelector('title').textContent)"
    )
    assert labels[3] == "3: " + tokens()[3] and labels[2] == "2:  cat"
    assert head.evaluate("window.__pwned") is None and page.evaluate("window.__pwned") is None

    # the model view: every layer and head; the planted thumbnail's brightest pixel of each row
    # is the token before it, and a click opens that head in the head view below
    assert model.locator("#model-view canvas.thumb").count() == LAYERS * HEADS
    brightest = model.evaluate(
        """([l, h]) => {
          const c = document.querySelector(`canvas.thumb[data-layer='${l}'][data-head='${h}']`);
          const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, out = [];
          for (let r = 0; r < c.height; r++) {
            let best = 0;
            const alpha = k => px[(r * c.width + k) * 4 + 3];
            for (let k = 1; k < c.width; k++) if (alpha(k) > alpha(best)) best = k;
            out.push(best);
          }
          return out;
        }""",
        list(PLANTED),
    )
    assert brightest == [0] + list(range(N - 1))
    assert model.is_hidden("#head-section")
    model.click(f"#model-view canvas.thumb[data-layer='{PLANTED[0]}'][data-head='{PLANTED[1]}']")
    assert model.is_visible("#head-section")
    assert sorted((q, k) for q, k, _ in head_lines(model)) == [(0, 0)] + [(q, q - 1) for q in range(1, N)]

    # the frames grew to their content, and nothing was fetched
    for frame in (head, model):
        inner = frame.evaluate("Math.ceil(document.body.getBoundingClientRect().height)")
        outer = frame.frame_element().evaluate("e => e.getBoundingClientRect().height")
        assert abs(outer - inner) <= 8
    assert problems == [] and outside == []
    page.close()


def test_saving_the_head_view_downloads_svg_and_png(browser, tmp_path):
    markup = head_view(planted_attention(), tokens(), layer=1, heads=[2], html_action="return").data
    page, (frame,), problems, outside = open_outputs(browser, tmp_path, [markup])
    with page.expect_download() as svg:
        frame.click("#hv-svg")
    text = Path(svg.value.path()).read_text(encoding="utf-8")
    assert svg.value.suggested_filename == "head-view-layer1-head2.svg" and "<svg" in text
    assert text.count("<line") == N
    with page.expect_download() as png:
        frame.click("#hv-png")
    assert Path(png.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert problems == [] and outside == []


def test_sentence_pairs_and_encoder_decoder_parts_draw_their_own_blocks(browser, tmp_path):
    weights = planted_attention()
    pair = head_view(weights, tokens(), 4, html_action="return").data
    rng = np.random.default_rng(1)
    enc, dec = ["a", "b", "c"], ["x", "y"]

    def rows(r, c):
        return rng.dirichlet(np.ones(c), size=(2, 3, r)).astype(np.float32)

    seq2seq = model_view(
        encoder_attention=rows(3, 3),
        decoder_attention=rows(2, 2),
        cross_attention=rows(2, 3),
        encoder_tokens=enc,
        decoder_tokens=dec,
        html_action="return",
    ).data
    page, (head, model), problems, _ = open_outputs(browser, tmp_path, [pair, seq2seq])
    names = head.eval_on_selector_all("#part option", "os => os.map(o => o.textContent)")
    assert names[3] == "Sentence A -> Sentence B"
    head.select_option("#layer", "1")
    head.select_option("#head", "2")
    head.select_option("#part", "3")  # queries 0-3, keys 4-9: only [CLS]'s own weight is outside
    left = head.eval_on_selector_all("#head-view g[data-side=q] text", "ts => ts.length")
    right = head.eval_on_selector_all("#head-view g[data-side=k] text", "ts => ts.map(t => t.textContent)")
    assert left == 4 and right[0].startswith("sat")
    assert head_lines(head) == []  # a previous-token head never reads across the boundary forwards
    head.select_option("#part", "4")  # B -> A: only token 4 reads token 3
    assert [(q, k) for q, k, _ in head_lines(head)] == [(0, 3)]
    model.select_option("#part", "2")  # cross: 2 decoder rows x 3 encoder columns
    size = model.eval_on_selector("canvas.thumb", "c => [c.height, c.width]")
    assert size == [2, 3] and model.locator("canvas.thumb").count() == 2 * 3
    assert problems == []


def test_include_layers_and_heads_keep_their_numbers(browser, tmp_path):
    markup = model_view(
        planted_attention(), tokens(), include_layers=[1, 2], include_heads=[2, 3], html_action="return"
    )
    page, (frame,), problems, _ = open_outputs(browser, tmp_path, [markup.data])
    labels = frame.eval_on_selector_all(".mv-label", "ls => ls.map(l => l.textContent)")
    assert [x for x in labels if x.startswith("L")] == ["L1", "L2"]
    assert [x for x in labels if x.startswith("H")] == ["H2", "H3"]
    frame.click("canvas.thumb[data-layer='0'][data-head='0']")  # layer 1, head 2: the planted one
    assert frame.text_content("#head-title") == "Head view: layer 1, head 2"
    assert sorted((q, k) for q, k, _ in head_lines(frame)) == [(0, 0)] + [(q, q - 1) for q in range(1, N)]
    assert problems == []


@pytest.fixture(scope="module")
def small_bert():
    """A random BERT big enough for BertViz's README calls (layer 2, heads 3 and 5, layers 5 and 6),
    loaded as BertViz's README loads one (output_attentions=True)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=24,
        num_hidden_layers=8,
        num_attention_heads=6,
        intermediate_size=32,
        max_position_embeddings=32,
        output_attentions=True,
    )
    return transformers.BertModel._from_config(config, attn_implementation="eager").eval()


def test_bertviz_readme_calls_run_unchanged_on_real_attentions(small_bert):
    import torch

    # as BertViz's README: inputs = tokenizer.encode(...); outputs = model(inputs); its
    # `outputs[-1]` is transformers 5's empty cross_attentions for a BERT, so .attentions
    inputs = torch.tensor([[2, 10, 11, 12, 13, 14, 3, 20, 21, 22, 3]])
    token_type_ids = torch.tensor([[0] * 7 + [1] * 4])
    with torch.no_grad():
        outputs = small_bert(inputs, token_type_ids=token_type_ids)
    attention = outputs.attentions
    with pytest.raises(InputError, match="outputs.attentions"):
        head_view(outputs[-1], ["x"] * 11)
    tokens = [
        "[CLS]",
        "the",
        "rabbit",
        "quickly",
        "hop",
        "##ped",
        "[SEP]",
        "the",
        "turtle",
        "crawled",
        "[SEP]",
    ]
    sentence_b_start = token_type_ids[0].tolist().index(1)
    assert head_view(attention, tokens) is None  # 'view' displays and returns nothing
    assert model_view(attention, tokens) is None
    calls = {
        "model_view(attention, tokens, sentence_b_start)": lambda: model_view(
            attention, tokens, sentence_b_start, html_action="return"
        ),
        "head_view(attention, tokens, sentence_b_start)": lambda: head_view(
            attention, tokens, sentence_b_start, html_action="return"
        ),
        "model_view(attention, tokens, display_mode='light')": lambda: model_view(
            attention, tokens, display_mode="light", html_action="return"
        ),
        "model_view(attention, tokens, include_layers=[5, 6])": lambda: model_view(
            attention, tokens, include_layers=[5, 6], html_action="return"
        ),
        "head_view(attention, tokens, layer=2, heads=[3,5])": lambda: head_view(
            attention, tokens, layer=2, heads=[3, 5], html_action="return"
        ),
        "head_view(attention, tokens, html_action='return')": lambda: head_view(
            attention, tokens, html_action="return"
        ),
    }
    from IPython.display import HTML

    for call, make in calls.items():
        out = make()
        assert isinstance(out, HTML), call
        assert out.data.startswith('<div class="attnreport-output"'), call
        assert_self_contained(out.data)
    # the attention travels as the site's uint8 blocks: the real weights within half a step
    markup = calls["model_view(attention, tokens, include_layers=[5, 6])"]().data
    data = _data_of(markup)
    got = unpacked(data["blocks"][0]["attention"])
    want = torch.stack(attention)[[5, 6], 0].numpy()
    assert got.shape == want.shape and np.abs(got - want).max() <= 1 / 255 + 1e-5
    assert data["layers"] == [5, 6]
    data = _data_of(calls["head_view(attention, tokens, layer=2, heads=[3,5])"]().data)
    assert data["layer"] == 2 and data["selected"] == [3, 5]


def _data_of(markup: str) -> dict:
    """The page data inside an output's srcdoc, read back as the browser would."""
    doc = srcdoc(markup)
    start = doc.index('id="notebook-data">') + len('id="notebook-data">')
    return json.loads(doc[start : doc.index("</script>", start)])


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda a, t: head_view(a, t[:-1]), ["10", "9"]),
        (
            lambda a, t: model_view([a[0][None], a[1][None, :, :5, :5]], t),
            ["layer 1", "[4, 5, 5]", "[4, 10, 10]"],
        ),
        (lambda a, t: head_view(np.stack([a, a], axis=1), t), ["batch of 2"]),
        (lambda a, t: model_view(a, t, include_layers=[3]), ["3", "3 layers"]),
        (lambda a, t: model_view(a, t, include_heads=[7]), ["7", "4 heads"]),
        (lambda a, t: head_view(a, t, layer=2, include_layers=[0, 1]), ["layer 2", "0, 1"]),
        (lambda a, t: head_view(a, t, sentence_b_start=10), ["10", "10 tokens"]),
        (lambda a, t: head_view(a, t, html_action="save"), ["'save'", "view, return"]),
        (lambda a, t: model_view(a, t, display_mode="blue"), ["'blue'", "light, dark"]),
    ],
)
def test_mistakes_are_one_line_naming_both_sizes(call, words):
    with pytest.raises(InputError) as caught:
        call(planted_attention(), tokens())
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_neuron_view_shows_pytorchs_own_queries_and_keys(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_models import make_tiny

    from attnreport.site.encode import unpack_signed

    folder = make_tiny("bert", tmp_path / "bert")
    model = transformers.AutoModel.from_pretrained(folder)  # sdpa by default: the pass runs eager
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    before = model.config._attn_implementation
    out = neuron_view(
        model, "bert", tokenizer, "the card was charged", "where is my parcel", html_action="return"
    )
    assert model.config._attn_implementation == before
    data = _data_of(out.data)
    encoded = tokenizer("the card was charged", "where is my parcel", return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded, output_hidden_states=True).hidden_states
    heads, d = model.config.num_attention_heads, model.config.hidden_size // model.config.num_attention_heads
    queries = unpack_signed(data["neuron"]["queries"])
    keys = unpack_signed(data["neuron"]["keys"])
    for layer, block in enumerate(model.encoder.layer):
        with torch.no_grad():
            q = block.attention.self.query(hidden[layer])[0].view(-1, heads, d).transpose(0, 1).numpy()
            k = block.attention.self.key(hidden[layer])[0].view(-1, heads, d).transpose(0, 1).numpy()
        assert np.abs(queries[layer] - q).max() <= np.abs(q).max() / 200
        assert np.abs(keys[layer] - k).max() <= np.abs(k).max() / 200
    assert data["neuron"]["scales"] == pytest.approx([d**-0.5] * len(model.encoder.layer))
    assert data["neuron"]["causal"] is False
    assert data["blocks"][0]["queries"] == tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])


def test_neuron_view_draws_scores_from_the_vectors_it_was_given(browser, tmp_path):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_models import make_tiny

    from attnreport.site.encode import unpack_signed

    folder = make_tiny("gpt2", tmp_path / "gpt2")
    model = transformers.AutoModel.from_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    out = neuron_view(
        model, "gpt2", tokenizer, "the card was charged twice", layer=1, head=3, html_action="return"
    )
    page, (frame,), problems, outside = open_outputs(browser, tmp_path, [out.data])
    data = frame_data(frame)
    assert data["neuron"]["causal"] is True
    svg = frame.locator("#neuron-view svg")
    assert svg.get_attribute("data-layer") == "1" and svg.get_attribute("data-head") == "3"
    n = len(data["blocks"][0]["queries"])
    assert svg.get_attribute("data-query") == str(n - 1)  # causal: the last token, which reads them all
    q = unpack_signed(data["neuron"]["queries"])[1, 3, n - 1]
    k = unpack_signed(data["neuron"]["keys"])[1, 3]
    want = k @ q * data["neuron"]["scales"][1]
    got = frame.eval_on_selector_all("#neuron-view g[data-k]", "gs => gs.map(g => +g.dataset.score)")
    assert np.allclose(got, want, rtol=1e-4, atol=1e-6)
    with pytest.raises(InputError, match="head is 4, but the model has 4 heads"):
        neuron_view(model, "gpt2", tokenizer, "the card", head=4, html_action="return")
    frame.select_option("#nv-query", "1")  # causal: the second token reads two keys
    assert frame.locator("#neuron-view g[data-k]").count() == 2
    assert problems == [] and outside == []


BLOCK_TORCH = textwrap.dedent(
    """
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "transformers"):
                raise ImportError(f"{name} is blocked in this test")
    sys.meta_path.insert(0, Block())
    import numpy as np
    from attnreport.notebook import head_view, model_view, neuron_view
    a = np.full((2, 1, 3, 4, 4), 0.25, dtype=np.float32)
    t = ["a", "b", "c", "d"]
    assert "srcdoc" in head_view(a, t, html_action="return").data
    assert "srcdoc" in model_view(list(a), t, html_action="return").data
    assert "torch" not in sys.modules and "transformers" not in sys.modules
    print("ok")
    """
)


def test_imports_and_draws_numpy_attention_with_torch_blocked():
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
