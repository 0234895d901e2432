"""Every class explained, not only the predicted one: the other classes' attributions and the
contrast p(A) - p(B) against brute force over every coalition, run here through onnxruntime
directly; no model run more than the predicted class alone needs; "why not B?" on the page."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
from conftest import REPORT_ROWS
from sitebuild import write_config

from attnreport.core.config import load_config
from attnreport.pipeline import build

#: the model runs in float32: probabilities agree to ~1e-7, two orders below this model's effects
ATOL = 2e-7


def brute_force_probabilities(folder, text: str) -> dict[tuple[bool, ...], np.ndarray]:
    """Class probabilities of every coalition of the text's content tokens, absent ones [MASK]."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    enc = tok.encode(text)
    ids = np.array(enc.ids, dtype=np.int64)
    content = [i for i, s in enumerate(enc.special_tokens_mask) if not s]
    mask_id = tok.token_to_id("[MASK]")
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    out = {}
    for keep in itertools.product([False, True], repeat=len(content)):
        row = ids.copy()
        row[[c for c, k in zip(content, keep, strict=True) if not k]] = mask_id
        (logits,) = session.run(
            ["logits"], {"input_ids": row[None], "attention_mask": np.ones_like(row)[None]}
        )
        z = np.exp(logits[0] - logits[0].max())
        out[keep] = z / z.sum()
    return out


def textbook_shapley(v, p: int) -> np.ndarray:
    phi = np.zeros(p)
    for i in range(p):
        for keep in itertools.product([False, True], repeat=p):
            if keep[i]:
                continue
            s = sum(keep)
            weight = math.factorial(s) * math.factorial(p - s - 1) / math.factorial(p)
            with_i = tuple(True if j == i else k for j, k in enumerate(keep))
            phi[i] += weight * (v(with_i) - v(keep))
    return phi


def content_values(entry: dict, a: dict) -> np.ndarray:
    return np.array([v for v, s in zip(a["values"], entry["special"], strict=True) if not s])


def test_other_classes_and_the_contrast_match_brute_force_at_no_extra_run(browser, tiny, tmp_path):
    model = tiny.export("bert")
    reports = {}
    for asked in ("1", "2", '"all"'):
        config = load_config(
            write_config(
                tmp_path / asked.strip('"'),
                model,
                REPORT_ROWS,
                extra=f"[analysis]\nexplain_classes = {asked}\n",
            )
        )
        site = build(config, tmp_path / f"site-{asked.strip(chr(34))}", progress=False).site
        reports[asked] = (site, json.loads((site / "report.json").read_text(encoding="utf-8")))
    one, two, every = (reports[k][1]["examples"] for k in ("1", "2", '"all"'))
    labels = reports["1"][1]["model"]["labels"]
    # the same model runs whatever the classes explained (the long text is sampled: the same seed
    # draws the same coalitions for every class)
    assert (
        [e["model_runs"] for e in one] == [e["model_runs"] for e in two] == [e["model_runs"] for e in every]
    )
    assert all(e["classes"] == {} and e["contrast"] is None for e in one)
    for e2, ea in zip(two, every, strict=True):
        ranked = sorted(labels, key=lambda k: -e2["probabilities"][k])
        assert list(e2["classes"]) == ranked[1:2] and sorted(ea["classes"]) == sorted(ranked[1:])
        assert (
            (e2["contrast"]["a"], e2["contrast"]["b"])
            == (ranked[0], ranked[1])
            == (e2["prediction"], ranked[1])
        )
        assert (
            ea["attributions"]
            == e2["attributions"]
            == next(e for e in one if e["id"] == e2["id"])["attributions"]
        )

    short = next(e for e in two if e["id"] == "short")
    assert short["attributions"]["shapley"]["exact"]
    probabilities = brute_force_probabilities(model, short["text"])
    p = len(next(iter(probabilities)))
    full = (True,) * p
    a, b = labels.index(short["contrast"]["a"]), labels.index(short["contrast"]["b"])

    def diff(keep):
        return probabilities[keep][a] - probabilities[keep][b]

    contrast = short["contrast"]
    assert contrast["output"] == "probability difference"
    assert np.abs(textbook_shapley(diff, p)).max() > 50 * ATOL  # effects well above the tolerance
    np.testing.assert_allclose(
        content_values(short, contrast["shapley"]), textbook_shapley(diff, p), atol=2e-6
    )
    loo = [diff(full) - diff(tuple(j != i for j in range(p))) for i in range(p)]
    np.testing.assert_allclose(content_values(short, contrast["occlusion"]), loo, atol=ATOL)
    for label, methods in next(e for e in every if e["id"] == "short")["classes"].items():
        c = labels.index(label)
        assert methods["shapley"]["target"] == label
        expected = textbook_shapley(lambda keep, c=c: probabilities[keep][c], p)
        np.testing.assert_allclose(content_values(short, methods["shapley"]), expected, atol=ATOL)
    # linear: the contrast is the difference of the two classes' own (exact) attributions
    own = content_values(short, short["attributions"]["shapley"])
    other = content_values(short, short["classes"][contrast["b"]]["shapley"])
    np.testing.assert_allclose(content_values(short, contrast["shapley"]), own - other, atol=ATOL)

    site = reports["2"][0]
    page = browser.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto((site / short["page"]).as_uri())
    page.wait_for_load_state("load")
    assert page.text_content("#why-not h2") == f"Why not {contrast['b']}?"
    assert page.text_content("#why-not-text") == short["summary"]["why_not"]["text"]
    name = f"shapley: {contrast['a']} rather than {contrast['b']}"
    assert name in page.eval_on_selector_all("#view option", "os => os.map(o => o.value)")
    page.click(f'#why-not button[data-show-view="{name}"]')
    assert page.input_value("#view") == name
    shown = page.eval_on_selector_all("#tokens .token:not(.special)", "ts => ts.map(t => +t.dataset.value)")
    np.testing.assert_allclose(shown, content_values(short, contrast["shapley"]), rtol=1e-6, atol=1e-12)
    assert "probability difference" in page.text_content("#view-note")
    page.click(f'#why-not button[data-show-view="shapley for {contrast["b"]}"]')
    shown = page.eval_on_selector_all("#tokens .token:not(.special)", "ts => ts.map(t => +t.dataset.value)")
    np.testing.assert_allclose(shown, other, rtol=1e-6, atol=1e-12)
    assert problems == []
