"""Counterfactual probes ([[probes]]): the swap rules by cases; the counts and the mean change of a
site built on a hand-set keyword classifier (known flips) against PyTorch run on counterfactual
texts written by hand; the probe pages in Chromium; the config's errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_browser import open_page

from attnreport.analysis.probes import ProbePair, ProbeResult, match_case, rewrite_rule
from attnreport.core.config import config_from_dict
from attnreport.core.errors import ConfigError
from attnreport.pipeline import build


@pytest.mark.parametrize(
    ("swap", "replace", "text", "want", "count"),
    [
        # word boundaries: not inside a longer word, in any script with spaces
        ([["the", "a"]], {}, "the theme is there, the end", "a theme is there, a end", 2),
        ([], {"café": "bar"}, "cafés, café. Café!", "cafés, bar. Bar!", 2),
        ([], {"urgent": "soon"}, "urgently urgent non-urgent", "urgently soon non-soon", 2),
        # simultaneous and symmetric: he -> she and she -> he in one pass, no double swap
        ([["he", "she"]], {}, "he said she would", "she said he would", 2),
        ([["he", "she"]], {}, "she, she and he", "he, he and she", 3),
        # case: lower, Title, UPPER kept; the config's own spelling as written
        ([["he", "she"]], {}, "He and HE and he", "She and SHE and she", 3),
        ([["Mr", "Ms"]], {}, "Mr Lee, MR LEE, mr lee", "Ms Lee, MS LEE, ms lee", 3),
        ([], {"iPhone": "Pixel"}, "my iPhone, my IPHONE", "my Pixel, my PIXEL", 2),
        # a phrase matches across any run of spaces; longer terms first
        ([], {"right away": "later", "right": "left"}, "right  away, right now", "later, left now", 2),
        # scripts without spaces match as written (no word boundaries)
        ([["发热", "咳嗽"]], {}, "我发热了,没有咳嗽", "我咳嗽了,没有发热", 2),
        # apostrophes and hyphens are boundaries
        ([["he", "she"]], {}, "he's here; he-man", "she's here; she-man", 2),
        # nothing to match: the text as it was
        ([["Mr", "Ms"]], {}, "Mrs Lee and Mister Lee", "Mrs Lee and Mister Lee", 0),
    ],
)
def test_rewrite_by_cases(swap, replace, text, want, count):
    assert rewrite_rule(swap, replace).apply(text) == (want, count)


def test_rewrite_spans_mark_the_terms_in_both_texts():
    done = rewrite_rule([["he", "she"]], {"right away": "later"}).rewrite("He left right  away; she")
    assert done.text == "She left later; he"
    assert [done.text[a:b] for a, b in done.after] == ["She", "later", "he"]
    assert [("He left right  away; she")[a:b] for a, b in done.before] == ["He", "right  away", "she"]


def test_match_case():
    assert match_case("He", "he", "she") == "She"
    assert match_case("HE", "he", "she") == "SHE"
    assert match_case("he", "he", "she") == "she"
    assert match_case("mR", "Mr", "Ms") == "Ms"  # no pattern: the replacement as written


def test_summary_by_hand():
    labels = ["a", "b"]
    pairs = [
        ProbePair("x", "t", "u", 1, None, np.array([0.9, 0.1]), np.array([0.2, 0.8])),
        ProbePair("y", "t", "u", 1, None, np.array([0.3, 0.7]), np.array([0.4, 0.6])),
        ProbePair("z", "t", "u", 2, None, np.array([0.6, 0.4]), np.array([0.6, 0.4])),
    ]
    r = ProbeResult(name="p", swap=[], replace={}, labels=labels, pairs=pairs, unscored=1, top=2)
    assert r.matched == 4 and r.flipped == 1
    assert [p.change for p in pairs] == pytest.approx([-0.7, -0.1, 0.0])
    mean, low, high = r.mean_change()
    assert mean == pytest.approx(-0.8 / 3) and low <= mean <= high and low >= -0.7 and high <= 0
    assert r.flips() == [("a", "b", 1)]
    assert [p.id for p in r.shown()] == ["x", "y"]
    assert ProbeResult(name="q", swap=[], replace={}, labels=labels).mean_change() is None


#: texts for the keyword classifier (urgent when it holds "urgent" or "now"), and the
#: counterfactuals of the "urgency" probe (urgent -> soon) written by hand
ROWS = [
    {"id": "k1", "text": "URGENT my card is lost", "label": "urgent"},
    {"id": "k2", "text": "my card was stolen , it is urgent", "label": "urgent"},
    {"id": "k3", "text": "urgent lock it now", "label": "urgent"},
    {"id": "k4", "text": "he said call back today", "label": "routine"},
    {"id": "k5", "text": "She lost the card", "label": "routine"},
    {"id": "k6", "text": "urgently help", "label": "routine"},
    {"id": "k7", "text": "my card is lost", "label": "routine"},
    {"id": "k8", "text": "<script>window.__pwned=1</script> urgent", "label": "urgent"},
]
BY_HAND = {
    "k1": "SOON my card is lost",
    "k2": "my card was stolen , it is soon",
    "k3": "soon lock it now",
    "k8": "<script>window.__pwned=1</script> soon",
}
PROBES = [
    {"name": "urgency <b>softened</b>", "replace": {"urgent": "soon"}, "top": 3},
    {"swap": [["he", "she"]]},
    {"swap": [["Mr", "Ms"]]},
]


def config(model, tmp_path, probes=PROBES, rows=ROWS):
    return config_from_dict(
        {
            "title": "probes",
            "model": {"path": str(model)},
            "data": {"texts": [r["text"] for r in rows]},
            "analysis": {"faithfulness": False},
            "site": {"scenes": False},
            "cache_dir": str(tmp_path / "cache"),
            "probes": probes,
        },
        base=tmp_path,
    )


@pytest.fixture(scope="module")
def keyword(tiny):
    from tiny_models import make_keyword_classifier

    from attnreport.export import export_model

    out = tiny.root / "export-keyword"
    if not out.exists():
        export_model(make_keyword_classifier(tiny.root / "checkpoint-keyword"), out)
    return out


@pytest.fixture(scope="module")
def probe_site(keyword, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probes")
    site = build(config(keyword, tmp), tmp / "site", progress=False).site
    return site, json.loads((site / "report.json").read_text(encoding="utf-8"))


def _torch_probabilities(tiny, texts):
    import torch
    import transformers

    checkpoint = tiny.root / "checkpoint-keyword"
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(checkpoint)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    out = []
    with torch.no_grad():
        for text in texts:
            out.append(model(**tok(text, return_tensors="pt")).logits.double().softmax(-1)[0].numpy())
    return out


def test_counts_and_mean_change_against_pytorch(probe_site, tiny):
    _, report = probe_site
    urgency, pronouns, titles = report["probes"]
    ids = [str(i) for i in range(len(ROWS))]  # inline texts are numbered
    matched = [ids[i] for i, r in enumerate(ROWS) if r["id"] in BY_HAND]
    before = _torch_probabilities(tiny, [r["text"] for r in ROWS if r["id"] in BY_HAND])
    after = _torch_probabilities(tiny, list(BY_HAND.values()))
    k = [int(np.argmax(p)) for p in before]
    changes = [a[c] - b[c] for a, b, c in zip(after, before, k, strict=True)]
    flipped = [i for i, a, c in zip(matched, after, k, strict=True) if int(np.argmax(a)) != c]
    # the known answer: a trigger removed flips to routine, unless "now" is still there
    assert flipped == ["0", "1", "7"]
    assert urgency["name"] == "urgency <b>softened</b>"
    assert urgency["matched"] == 4 and urgency["flipped"] == 3 and urgency["flipped_ids"] == flipped
    assert urgency["flips"] == [{"from": "urgent", "to": "routine", "texts": 3}]
    assert urgency["mean_change"] == pytest.approx(float(np.mean(changes)), abs=1e-4)
    low, high = urgency["mean_change_interval"]
    assert low <= urgency["mean_change"] <= high
    # the three largest changes, each with its counterfactual as written by hand and its page
    shown = urgency["examples"]
    order = np.argsort(-np.abs(changes), kind="stable")[:3]
    assert [x["id"] for x in shown] == [matched[i] for i in order]
    for x in shown:
        assert x["counterfactual"] == BY_HAND[ROWS[int(x["id"])]["id"]]
        assert x["prediction_before"] == "urgent" and x["prediction_after"] == "routine"
        assert x["page"].startswith("probes/") and x["example_page"].startswith("examples/")
    # swapping words the model ignores changes nothing; a probe with no match says so
    assert pronouns["matched"] == 2 and pronouns["flipped"] == 0
    assert abs(pronouns["mean_change"]) < 1e-5
    assert pronouns["examples"][0]["counterfactual"] in ("she said call back today", "He lost the card")
    assert titles["matched"] == 0 and titles["note"] == "matched no text" and titles["examples"] == []


def test_probe_pages_in_chromium(browser, probe_site, served):  # noqa: F811
    site, report = probe_site
    root, base = served
    (root / "site").symlink_to(site, target_is_directory=True)
    urgency = report["probes"][0]
    page, problems, outside = open_page(browser, f"{base}/site/probes.html")
    assert page.evaluate("window.__pwned") is None
    assert page.text_content("#probe-1 h2") == "urgency <b>softened</b>"  # text, not markup
    assert page.text_content("#probe-1 .matched").strip() == "4"
    assert page.text_content("#probe-1 .flipped").startswith("3 of 4")
    assert f"{100 * urgency['mean_change']:+.1f} points" in page.text_content("#probe-1 .mean-change")
    assert "matched no text" in page.text_content("#probe-3 .probe-none")
    assert problems == [] and outside == []
    pair = urgency["examples"][0]
    page, problems, outside = open_page(browser, f"{base}/site/{pair['page']}")
    assert page.text_content("#side-original .source-text") == pair["original"]
    assert page.text_content("#side-counterfactual .source-text") == pair["counterfactual"]
    assert page.text_content("#side-original mark.replaced") == "URGENT"
    assert page.text_content("#side-counterfactual mark.replaced") == "SOON"
    views = page.eval_on_selector_all("#view option", "os => os.map(o => o.value)")
    assert views[0] == "shapley for urgent" and "rollout" in views
    # both texts drawn token by token, shaded by the same class's attributions
    for k, text in enumerate((pair["original"], pair["counterfactual"])):
        tokens = page.eval_on_selector_all(f"#tokens-{k} .token", "s => s.map(e => e.textContent)")
        assert " ".join(tokens).lower() == text.lower()
        assert page.get_attribute(f"#tokens-{k}", "data-view") == "shapley for urgent"
    # the trigger carries the urgent class in the original; its replacement carries nothing
    trigger = page.eval_on_selector_all("#tokens-0 .token", "s => s.map(e => parseFloat(e.dataset.value))")
    words = pair["original"].split()
    assert max(range(len(words)), key=lambda i: trigger[i]) == words.index(
        next(w for w in words if w.lower() == "urgent")
    )
    page.select_option("#view", "rollout")
    assert page.get_attribute("#tokens-1", "data-view") == "rollout"
    assert problems == [] and outside == []
    # a text holding markup is shown as text on both sides
    hostile = next(x for x in urgency["examples"] if x["id"] == "7")
    page, problems, outside = open_page(browser, f"{base}/site/{hostile['page']}")
    assert page.evaluate("window.__pwned") is None
    assert page.text_content("#side-counterfactual .source-text") == BY_HAND["k8"]
    assert "</script>" in page.text_content("#tokens-1")
    assert problems == [] and outside == []
    index, problems, _ = open_page(browser, f"{base}/site/index.html")
    assert index.get_attribute("a[href='probes.html']", "href") == "probes.html" and problems == []


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        ({"name": "empty"}, r"\[\[probes\]\] 1 \('empty'\): it swaps nothing"),
        ({"swap": []}, r"\[\[probes\]\] 1: it swaps nothing"),
        ({"swap": [["he"]]}, r"swap pair \['he'\] is not two words"),
        ({"swap": [["he", 3]]}, r"swap pair \['he', 3\] is not two words"),
        ({"swap": ["he", "she"]}, r"swap pair 'he' is not two words"),
        ({"swap": [["he", "she"], ["She", "they"]]}, r"'She' is named twice"),
        ({"replace": {"urgent": 1}}, r"replace 'urgent' = 1"),
        ({"swap": [["a", "b"]], "top": -1}, r"top = -1"),
        ({"swap": [["a", "b"]], "typo": 1}, r"unknown option \[\[probes\]\] 'typo'"),
    ],
)
def test_probe_errors_are_one_line(probe, message, tmp_path):
    with pytest.raises(ConfigError, match=message) as error:
        config(Path("m"), tmp_path, probes=[probe])
    assert "\n" not in str(error.value)


def test_probe_names_are_unique_and_default_to_terms(tmp_path):
    c = config(Path("m"), tmp_path, probes=[{"swap": [["he", "she"]], "replace": {"Mr": "Ms"}}])
    assert c.probes[0].name == "he ↔ she, Mr → Ms"
    with pytest.raises(ConfigError, match="used twice"):
        config(Path("m"), tmp_path, probes=[{"swap": [["a", "b"]]}, {"swap": [["a", "b"]]}])


#: the copy circuit continues a repeated sequence: "w2" follows the last "w9", and "w30" follows "w2"
GEN_PROMPTS = ["w0 w5 w9 w2 w30 w11 w12 w5 w9", "w1 w4 w6 w8 w1 w4"]
GEN_PROBES = [
    {"name": "first copied word", "swap": [["w2", "w3"]]},
    {"name": "second copied word", "replace": {"w30": "w31"}},
    {"name": "absent", "swap": [["w36", "w35"]]},
]


@pytest.fixture(scope="module")
def answer_site(copy_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("answer-probes")
    c = config_from_dict(
        {
            "title": "answer probes",
            "model": {"path": str(copy_model)},
            "data": {"prompts": GEN_PROMPTS},
            "generate": {"max_new_tokens": 4, "attributions": []},
            "cache_dir": str(tmp / "cache"),
            "probes": GEN_PROBES,
        },
        base=tmp,
    )
    site = build(c, tmp / "site", progress=False).site
    return site, json.loads((site / "report.json").read_text(encoding="utf-8"))


def test_answer_probes_part_where_the_copied_word_changed(answer_site, tiny):
    import torch
    import transformers

    _, report = answer_site
    first, second, absent = report["probes"]
    assert first["matched"] == 1 and first["changed"] == 1
    (x,) = first["examples"]
    assert x["counterfactual"] == "w0 w5 w9 w3 w30 w11 w12 w5 w9"
    assert x["answer_before"].split() == ["w2", "w30", "w11", "w12"]
    assert x["answer_after"].split()[0] == "w3" and x["diverge_step"] == 0  # copies the swapped word
    (y,) = second["examples"]
    assert y["answer_after"].split()[:2] == ["w2", "w31"] and y["diverge_step"] == 1
    assert absent["matched"] == 0 and absent["note"] == "matched no text"
    # the first answer's log-probability under each rewritten prompt, by PyTorch
    checkpoint = tiny.root / "checkpoint-copy"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), attn_implementation="eager")
    tok = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    answer = tok(" ".join(x["answer_before"].split()), add_special_tokens=False)["input_ids"]
    base = report["examples"][0]["generation"]
    assert base["ids"] == answer
    for probe, pair in ((first, x), (second, y)):
        prompt = tok(pair["counterfactual"])["input_ids"]
        ids = prompt + answer
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids[:-1]])).logits[0].double(), dim=-1)
        want = sum(float(logp[len(prompt) - 1 + t, i]) for t, i in enumerate(answer))
        assert pair["log_probability_change"] == pytest.approx(want - base["log_probability"], abs=1e-3)
        assert probe["mean_log_probability_change"] == pytest.approx(pair["log_probability_change"])
        assert pair["log_probability_change"] < -10  # the copied word is gone: the old answer is unlikely
    # each rewrite is a variant too, with a page of its own
    assert {v["id"] for v in report["variants"]} == {"0~probe-1", "0~probe-2"}
    assert x["page"].startswith("examples/") and x["example_page"] == report["examples"][0]["page"]


def test_answer_probes_page_in_chromium(browser, answer_site, served):  # noqa: F811
    site, report = answer_site
    root, base = served
    (root / "site").symlink_to(site, target_is_directory=True)
    page, problems, outside = open_page(browser, f"{base}/site/probes.html")
    assert page.text_content("#probe-1 .changed").strip() == "1 of 1"
    assert "token 0" in page.text_content("#probe-1 table") and "token 1" in page.text_content(
        "#probe-2 table"
    )
    assert "matched no text" in page.text_content("#probe-3 .probe-none")
    page.click("#probe-1 a:text('side by side')")
    page.wait_for_load_state("load")
    assert page.url.endswith("variants.html#0~probe-1")
    assert page.locator("[id='0~probe-1'] h2").text_content() == "first copied word"
    assert problems == [] and outside == []


def test_readme_documents_every_key_of_a_probe_entry(probe_site, answer_site):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for _, report in (probe_site, answer_site):
        for probe in report["probes"]:
            for key in [*probe, *(k for x in probe["examples"] for k in x)]:
                assert f'"{key}"' in readme, key
