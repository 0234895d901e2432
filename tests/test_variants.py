"""Prompt variants ([[variants]]): the pairing by hand, the first answer's log-probability under the
variant against PyTorch, the variants page in Chromium, and the config's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_browser import open_page

from attnreport.analysis.variants import diverge_step, shared_units
from attnreport.core.config import config_from_dict
from attnreport.core.errors import ConfigError
from attnreport.pipeline import build

PROMPT = "w0 w5 w9 w2 w30 w11 w12 w5 w9"
HOSTILE_NAME = "<img src=x onerror=window.__pwned=1> moved"


def test_diverge_step():
    assert diverge_step([1, 2, 3], [1, 2, 3]) is None
    assert diverge_step([1, 2, 3], [1, 5, 3]) == 1
    assert diverge_step([1, 2], [1, 2, 3]) == 2  # one answer is the other's beginning
    assert diverge_step([], [4]) == 0


def test_shared_units_match_in_order():
    assert shared_units(["a", "b", "c"], ["a", "b", "c"]) == [(0, 0), (1, 1), (2, 2)]
    # a word added in front: everything else matched, shifted
    assert shared_units(["card", "declined"], ["bank", "card", "declined"]) == [(0, 1), (1, 2)]
    # a word moved to the front: matched once, where the longer run allows
    pairs = shared_units(["tell", "me", "briefly"], ["briefly", "tell", "me"])
    assert pairs == [(0, 1), (1, 2)]
    assert shared_units(["x"], ["y"]) == []


def config(export, tmp_path, variants, prompts=("w0 w5 w9 w2 w30 w11 w12 w5 w9",)):
    return config_from_dict(
        {
            "title": "variants",
            "model": {"path": str(export)},
            "data": {"prompts": list(prompts)},
            "generate": {"max_new_tokens": 4},
            "cache_dir": str(tmp_path / "cache"),
            "variants": variants,
        },
        base=tmp_path,
    )


@pytest.fixture(scope="module")
def variant_site(copy_model, tmp_path_factory):
    """The copy circuit continues the repeated sequence: the variant changes the token the prompt
    ends on, so its answer copies from another place and parts from the first."""
    tmp = tmp_path_factory.mktemp("variants")
    variants = [
        {"of": "0", "prompt": "w0 w5 w9 w2 w30 w11 w12 w5", "name": HOSTILE_NAME},
        {"of": "0", "prompt": "w0 w7 w5 w9 w2 w30 w11 w12 w5 w9", "name": "a word added in front"},
    ]
    site = build(config(copy_model, tmp, variants), tmp / "site", progress=False).site
    return site, json.loads((site / "report.json").read_text(encoding="utf-8"))


def test_variants_report_pairs_answers_and_the_first_answers_likelihood(variant_site, tiny):
    import torch
    import transformers

    _, report = variant_site
    first, added = report["variants"]
    assert first["id"] == "0~variant-1" and first["of"] == "0"
    assert first["base"]["tokens"] == ["w2", "w30", "w11", "w12"]
    assert first["variant"]["tokens"][0] == "w9"  # it ends on w5: copies what followed w5
    assert first["diverge_step"] == 0 and not first["same_answer"]
    assert added["same_answer"] and added["diverge_step"] is None
    assert [u["text"] for u in added["shared_units"]] == PROMPT.split(" ")
    assert [u["variant_unit"] for u in added["shared_units"]] == [0, *range(2, 10)]  # w7 added at 1
    # the first answer's log-probability under each variant prompt, by PyTorch
    checkpoint = tiny.root / "checkpoint-copy"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), attn_implementation="eager")
    tok = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    base = report["examples"][0]["generation"]
    for v in report["variants"]:
        prompt = tok(v["variant"]["prompt"])["input_ids"]
        ids = prompt + base["ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids[:-1]])).logits[0].double(), dim=-1)
        n = len(prompt)
        want = sum(float(logp[n - 1 + t, i]) for t, i in enumerate(base["ids"]))
        assert v["base_answer_under_variant"] == pytest.approx(want, abs=1e-3)
        assert v["log_probability_change"] == pytest.approx(want - base["log_probability"], abs=1e-3)
    shared = added["shared_units"][0]
    assert len(shared["attention"]) == 2 and len(shared["attribution"]) == 2
    # the variants are pages of their own, labelled
    labels = {e["id"]: e["label"] for e in report["examples"]}
    assert labels["0~variant-1"] == "variant of 0"


def test_variants_page_in_chromium(browser, variant_site, served):  # noqa: F811
    site, report = variant_site
    root, base = served
    (root / "site").symlink_to(site, target_is_directory=True)
    page, problems, outside = open_page(browser, f"{base}/site/variants.html")
    assert page.evaluate("window.__pwned") is None
    assert page.text_content("section.variant h2") == HOSTILE_NAME
    diverged = page.eval_on_selector_all(
        "[id='0~variant-1'] .side:nth-child(2) .answer-text span.diverged", "s => s.map(e => e.textContent)"
    )
    assert diverged == report["variants"][0]["variant"]["tokens"]  # parted from the first token
    assert page.locator("section.variant").count() == 2
    assert problems == [] and outside == []
    index, problems, _ = open_page(browser, f"{base}/site/index.html")
    assert index.get_attribute("a[href='variants.html']", "href") == "variants.html" and problems == []


def test_variant_errors_are_one_line(copy_model, tmp_path):
    with pytest.raises(ConfigError, match=r"\[\[variants\]\] 1: `prompt`"):
        config(copy_model, tmp_path, [{"of": "0"}])
    with pytest.raises(ConfigError, match=r"unknown option \[\[variants\]\] 'text'"):
        config(copy_model, tmp_path, [{"of": "0", "text": "x"}])
    bad = config(copy_model, tmp_path, [{"of": "nope", "prompt": "w0 w1"}])
    with pytest.raises(ConfigError, match=r"of = 'nope': no prompt has that id \(ids: 0\)"):
        build(bad, tmp_path / "site", progress=False)
    assert not (tmp_path / "site").exists()


def test_classification_reports_refuse_variants(tmp_path):
    with pytest.raises(ConfigError, match="need a generation report"):
        config_from_dict(
            {"model": {"path": "m"}, "data": {"texts": ["a"]}, "variants": [{"of": "0", "prompt": "b"}]},
            base=Path(tmp_path),
        )
