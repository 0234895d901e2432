"""A generation report with answer attributions, built by the real pipeline on the planted copy
circuit: report.json's attributions, their declared units, and the page's colours in Chromium."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from test_browser import open_page

from attnreport.core.config import DataConfig, GenerateConfig, ModelConfig, ReportConfig
from attnreport.core.errors import ConfigError
from attnreport.pipeline import build

PROMPTS = ["w0 w5 w9 w2 w30 w11 w12 w5 w9", "w0 w7 w3 w21 w7"]
#: the first prompt's asked-for contrasts: why its token 1 is not w7, and one beyond the answer
ASKED = [{"step": 1, "token": "w7"}, {"step": 9, "token": "w3"}]


@pytest.fixture(scope="module")
def copy_site(copy_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("answer-page")
    export = copy_model
    rows = [{"id": "a", "prompt": PROMPTS[0], "contrast": ASKED}, {"id": "b", "prompt": PROMPTS[1]}]
    data = root / "prompts.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = ReportConfig(
        title="copy circuit",
        model=ModelConfig(path=export),
        data=DataConfig(path=data),
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
    assert shap["unit"] == "word" and [u["text"] for u in shap["units"]] == [*words, "[the answer so far]"]
    assert shap["units"][-1] == {
        "start": None,
        "stop": None,
        "text": "[the answer so far]",
        "segment": "answer",
    }
    # the answer so far cannot move the first answer token: nothing of it is written yet
    assert g["attributions"]["occlusion"]["values"][0][-1] == 0
    assert abs(shap["values"][0][-1]) < 1.96 * shap["stderr"][0][-1]  # sampled: no sign established
    for u in shap["units"][:-1]:
        assert g["input_text"][u["start"] : u["stop"]] == u["text"]
    assert shap["output"] == "log_probability" and shap["baseline"]
    assert len(shap["values"]) == len(g["tokens"]) and all(len(v) == len(words) + 1 for v in shap["values"])
    # the copy: w2 follows w9 earlier, so w9's successor (unit 3, "w2") carries the first step
    assert int(np.argmax(shap["values"][0])) in (3, len(words) - 1)
    # efficiency: the whole answer's values sum to its log-probability's rise over the baseline
    assert len(shap["answer"]) == len(words) + 1
    contrasts = [c for c in g["contrasts"] if c["method"] == "shapley" and c["source"] == "runner_up"]
    assert [c["step"] for c in contrasts] == list(range(len(g["tokens"])))
    for c in contrasts:
        step = g["steps"][c["step"]]
        runner = next(t["token"] for t in step["top"] if t["token"] != c["target"])
        assert c["target"] == g["tokens"][c["step"]] and c["foil"] == runner
    faith = g["attribution_faithfulness"]
    assert {"shapley", "occlusion", "attention", "random"} <= set(faith)
    lds = g["attribution_lds"]  # sampled values: scored on held-out ablations, every view alike
    assert lds["ablations"] == 64 and {"shapley", "occlusion", "attention"} <= set(lds["by_view"])
    assert all(len(v["tokens"]) == len(g["tokens"]) for v in lds["by_view"].values())
    assert g["attribution_skipped"] == ["contrast at step 9 with «w3»: the answer has 4 tokens"]


def test_asked_contrast_is_the_log_probability_difference_pytorch_gives(copy_site, tiny):
    """Occlusion of the asked contrast "token 1 rather than w7", against PyTorch on the prompt with
    each word replaced by the declared baseline."""
    import torch
    import transformers

    _, report = copy_site
    g = report["examples"][0]["generation"]
    (asked,) = [c for c in g["contrasts"] if c["source"] == "asked" and c["method"] == "occlusion"]
    assert (asked["step"], asked["foil"]) == (1, "w7")
    checkpoint = tiny.root / "checkpoint-copy"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), attn_implementation="eager")
    tok = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    baseline = tok.convert_tokens_to_ids(g["attributions"]["occlusion"]["baseline"])
    prompt, answer = g["prompt_ids"], g["ids"]
    target, foil = answer[1], asked["foil_id"]
    assert tok.convert_ids_to_tokens(foil) == "w7"

    def contrast(ids):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids + answer[:-1]])).logits[0].double()
        logp = torch.log_softmax(logits[len(prompt)], dim=-1)  # the position that wrote token 1
        return float(logp[target] - logp[foil])

    full = contrast(prompt)
    for j in range(len(prompt)):
        without = contrast([baseline if i == j else t for i, t in enumerate(prompt)])
        assert asked["values"][j] == pytest.approx(full - without, abs=1e-3), j


def test_unknown_answer_method_is_one_line(tmp_path, tiny):
    config = ReportConfig(
        model=ModelConfig(path=tiny.root),
        data=DataConfig(prompts=["x"]),
        generate=GenerateConfig(enabled=True, attributions=["lime"]),
    )
    with pytest.raises(ConfigError, match=r"\[generate\] attributions has unknown method 'lime'; known"):
        build(config, tmp_path / "site", progress=False)


def scaled(values, scale=2.0):
    """The shade a value gets: its size against the fixed scale (2 nats), saturating."""
    return [min(1.0, abs(v) / scale) for v in values]


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
        # the answer so far is one unit: every earlier answer token shaded by its value, the rest not
        answer_unit = shap["units"].index(next(u for u in shap["units"] if u.get("segment") == "answer"))
        want_answer = min(1.0, abs(shap["values"][step][answer_unit]) / 2.0)
        assert [w for _, w in got[n : n + step]] == pytest.approx([want_answer] * step, abs=1e-3)
        assert all(w == 0 for _, w in got[n + step :])
    page.select_option("#g-explain", "contrast")
    got = chips(page)
    contrast = next(
        c
        for c in g["contrasts"]
        if c["method"] == "shapley" and c["step"] == 2 and c["source"] == "runner_up"
    )
    want = [min(1, abs(v) / 2) for v in contrast["values"][:n]]
    assert [w for _, w in got[:n]] == pytest.approx(want, abs=1e-3)
    page.select_option("#g-explain", "answer")
    got = chips(page)
    assert [w for _, w in got[:n]] == pytest.approx(scaled(shap["answer"][:n]), abs=1e-3)
    assert "whole answer" in page.text_content("#g-note")
    page.select_option("#g-explain", "asked:0")  # the asked-for contrast chooses its own token
    assert page.get_attribute('#g-tokens button[data-step="1"]', "aria-pressed") == "true"
    asked = next(c for c in g["contrasts"] if c["source"] == "asked" and c["method"] == "shapley")
    got = chips(page)
    assert [w for _, w in got[:n]] == pytest.approx(scaled(asked["values"][:n]), abs=1e-3)
    assert "asked for" in page.text_content("#g-note")
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


def test_a_malformed_contrast_names_its_line(tmp_path):
    from attnreport.core.errors import InputError
    from attnreport.trace import read_rows

    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "a b"}\n{"prompt": "c d", "contrast": [{"step": "one", "token": "x"}]}\n')
    with pytest.raises(InputError, match=r"p\.jsonl:2: contrast must be a list of"):
        list(read_rows(DataConfig(path=data, on_bad_row="fail"), prompts=True))
    skipped = []
    rows = list(read_rows(DataConfig(path=data, on_bad_row="skip"), prompts=True, on_bad=skipped.append))
    assert [r.text for r in rows] == ["a b"] and [bad.line for bad in skipped] == [2]


def test_a_rebuild_reads_the_answers_attributions_from_the_cache(copy_model, tmp_path, monkeypatch):
    import attnreport.run.answer_explainer as answers
    from attnreport.trace.forced import ForcedAnswer

    runs = []

    class Counted(ForcedAnswer):
        def __call__(self, masks):
            runs.append(len(masks))
            return super().__call__(masks)

    monkeypatch.setattr(answers, "ForcedAnswer", Counted)
    data = tmp_path / "prompts.jsonl"
    rows = [{"id": "a", "prompt": PROMPTS[0], "contrast": ASKED}, {"id": "b", "prompt": PROMPTS[1]}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = ReportConfig(
        model=ModelConfig(path=copy_model),
        data=DataConfig(path=data),
        generate=GenerateConfig(enabled=True, max_new_tokens=4),
        cache_dir=tmp_path / "cache",
    )
    first = build(config, tmp_path / "one", progress=False).site
    assert sum(runs) > 0
    runs.clear()
    second = build(config, tmp_path / "two", progress=False).site
    assert runs == []  # not one coalition ran again
    assert (first / "report.json").read_bytes() == (second / "report.json").read_bytes()
    page = "examples/a.html"
    assert (first / page).read_bytes() == (second / page).read_bytes()
    # another option is another entry: the answers are explained again
    config.analysis.max_exact = 4
    build(config, tmp_path / "three", progress=False)
    assert sum(runs) > 0
