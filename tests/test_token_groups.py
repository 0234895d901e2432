"""Attention and attribution by token group, against loops written here, and the config's errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sitebuild import write_config

from attnreport.analysis.options import check_options
from attnreport.analysis.token_groups import (
    TokenGroupTally,
    bootstrap_mean,
    is_number,
    is_punctuation,
    term_pattern,
    user_group,
)
from attnreport.core.config import AnalysisConfig, load_config
from attnreport.core.errors import ConfigError
from attnreport.pipeline import build
from attnreport.testing import make_trace, random_attentions


def test_numbers_and_punctuation_in_any_script():
    for token in ["1", "200", "1,200.50", "##50", "Ġ42", "٣٫٥", "१२"]:
        assert is_number(token), token
    for token in ["a1", "abc", ",", "", "Ġ"]:
        assert not is_number(token), token
    for token in [",", ".", "。", "！", "?!", "Ġ,"]:
        assert is_punctuation(token), token
    assert not is_punctuation("a.") and not is_punctuation("1")


def test_word_lists_match_words_and_scripts_without_spaces():
    text = "Pain while painting; 我发热了"
    offsets = np.array([[0, 4], [5, 10], [11, 19], [19, 20], [21, 22], [22, 24], [24, 25]])
    special = np.zeros(7, dtype=bool)
    got = user_group(text, offsets, special, term_pattern(["pain", "发热"]))
    assert got.tolist() == [True, False, False, False, False, True, False]  # not "painting"
    amounts = term_pattern("regex:[$£]\\d+")
    assert user_group(
        "pay £40 now", np.array([[0, 3], [4, 5], [5, 7], [8, 11]]), np.zeros(4, bool), amounts
    ).tolist() == [
        False,
        True,
        True,
        False,
    ]


def test_tally_is_the_loop_over_texts_and_tokens():
    rng = np.random.default_rng(3)
    tally = TokenGroupTally.from_config({"pay": ["pay"]})
    want_attention, want_attribution = [], []
    for k in range(6):
        tokens = (
            ["[CLS]", "pay", "12", ",", "now", "[SEP]"] if k % 2 else ["[CLS]", "hello", "there", "[SEP]"]
        )
        n = len(tokens)
        text = " ".join(tokens[1:-1])
        offsets, at = [(0, 0)], 0
        for t in tokens[1:-1]:
            offsets.append((at, at + len(t)))
            at += len(t) + 1
        offsets.append((0, 0))
        special = [t.startswith("[") for t in tokens]
        attentions = random_attentions(2, 3, n, random_state=rng)
        values = rng.standard_normal(n) * ~np.array(special)
        tally.add(make_trace(attentions, tokens=tokens, special=special, text=text, offsets=offsets), values)
        if k % 2:  # the "pay" group: token 1; by loops: received = mean over heads and queries
            per_layer = []
            for layer in range(2):
                received = [
                    np.mean([attentions[layer, h, q, key] for h in range(3) for q in range(n)])
                    for key in range(n)
                ]
                content = [received[i] for i in range(1, n - 1)]
                per_layer.append(received[1] / np.mean(content))
            want_attention.append(per_layer)
            mass = sum(abs(values[i]) for i in range(1, n - 1))
            want_attribution.append(abs(values[1]) / mass / (1 / (n - 2)))
    summary = tally.summary()
    assert summary["texts"] == 6
    pay = summary["groups"]["pay"]
    assert pay["tokens"] == 3 and pay["texts"] == 3
    np.testing.assert_allclose(pay["attention"]["mean"], np.mean(want_attention, axis=0), rtol=1e-6)
    assert pay["attribution"]["mean"] == pytest.approx(np.mean(want_attribution), rel=1e-6)
    assert summary["groups"]["numbers"]["tokens"] == 3 and summary["groups"]["punctuation"]["tokens"] == 3
    assert all(
        lo <= m <= hi
        for lo, m, hi in zip(
            pay["attention"]["low"], pay["attention"]["mean"], pay["attention"]["high"], strict=True
        )
    )


def test_bootstrap_interval():
    mean, low, high = bootstrap_mean(np.array([2.0, 2.0, 2.0]))
    assert (mean, low, high) == (2.0, 2.0, 2.0)
    values = np.random.default_rng(0).normal(1.0, 0.1, 400)
    mean, low, high = bootstrap_mean(values)
    assert low < mean < high and high - low == pytest.approx(2 * 1.96 * 0.1 / 20, rel=0.25)


def test_token_group_options_are_checked():
    for groups, message in [
        ({"numbers": ["x"]}, "built-in group"),
        ({"bad": "regex:("}, "bad"),
        ({"odd": 3}, "list of words"),
        ({"plain": "fever"}, "regex:"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check_options(AnalysisConfig(token_groups=groups))


def test_report_and_index_show_the_groups(tiny, tmp_path):
    rows = [
        {"id": "a", "text": "refund 40 pounds, please", "label": "alpha"},
        {"id": "b", "text": "my fever is high", "label": "beta"},
    ]
    extra = '[analysis.token_groups]\nsymptoms = ["fever"]\n[site]\nscenes = false\n'
    config = load_config(write_config(tmp_path / "p", tiny.export("bert"), rows, extra=extra))
    site = build(config, tmp_path / "site", progress=False).site
    groups = json.loads((site / "report.json").read_text())["token_groups"]
    assert groups["texts"] == 2 and set(groups["groups"]) == {"numbers", "punctuation", "special", "symptoms"}
    assert (
        groups["groups"]["symptoms"]["texts"] == 1
        and len(groups["groups"]["symptoms"]["attention"]["mean"]) == 2
    )
    html = (site / "index.html").read_text()
    assert 'id="token-groups"' in html and "symptoms" in html


def test_a_text_with_non_finite_attention_is_left_out_and_counted():
    attentions = random_attentions(1, 2, 4, random_state=0)
    attentions[0, 1, 2, 3] = np.nan
    tally = TokenGroupTally.from_config({})
    tally.add(
        make_trace(attentions, tokens=["[CLS]", "1", ",", "[SEP]"], special=[True, False, False, True]), None
    )
    summary = tally.summary()
    assert summary["texts"] == 0 and summary["nonfinite_texts"] == 1
    assert "attention" not in summary["groups"]["numbers"]


def test_a_windowed_text_is_left_out_and_counted():
    trace = make_trace(random_attentions(1, 2, 4, random_state=0), tokens=["[CLS]", "a", "b", "[SEP]"])
    trace.windows = [(0, 3), (1, 4)]
    tally = TokenGroupTally.from_config({})
    tally.add(trace, None)
    assert tally.summary()["windowed_texts"] == 1 and tally.summary()["texts"] == 0


def test_word_attributions_count_for_their_words(tiny, tmp_path):
    rows = [
        {"id": "a", "text": "my fever is high since monday", "label": "alpha"},
        {"id": "b", "text": "a cough and a fever", "label": "beta"},
        {"id": "c", "text": "refund the money", "label": "alpha"},
    ]
    extra = (
        '[analysis]\nattribution_unit = "word"\nattributions = ["shapley"]\n'
        '[analysis.token_groups]\nsymptoms = ["fever", "cough"]\n[site]\nscenes = false\n'
    )
    config = load_config(write_config(tmp_path / "p", tiny.export("bert"), rows, extra=extra))
    report = json.loads((build(config, tmp_path / "site", progress=False).site / "report.json").read_text())
    want = []
    for e in report["examples"]:
        entry = e["attributions"]["shapley"]
        assert entry["unit"] == "word"
        words = [u["text"] for u in entry["units"]]
        members = [w in ("fever", "cough") for w in words]
        if not any(members):
            continue
        mass = np.abs(entry["values"])
        share = mass[members].sum() / mass.sum()
        content = [i for i, s in enumerate(e["special"]) if not s]
        inside = [
            i
            for i in content
            for u, m in zip(entry["units"], members, strict=True)
            if m and e["offsets"][i][0] < u["stop"] and e["offsets"][i][1] > u["start"]
        ]
        want.append(share / (len(inside) / len(content)))
    got = report["token_groups"]["groups"]["symptoms"]["attribution"]
    assert got["texts"] == len(want) == 2
    assert got["mean"] == pytest.approx(np.mean(want), rel=1e-6)


def test_the_demo_amounts_group_matches_amounts_written_either_way():
    """The demo's `amounts` group: the symbol before the number ("€120", "£35") or after it ("50€",
    the form the demo's tickets use that the first pattern missed), or the currency in words."""
    from attnreport.demo import DEMO_TOKEN_GROUPS

    pattern = term_pattern(DEMO_TOKEN_GROUPS["amounts"])
    for text in ("charged 50€.", "€120 twice", "£35 fee", "$12.50", "40 euros", "1,200 €", "300 USD"):
        assert pattern.search(text), text
    for text in ("50 items", "room 12", "2 pm"):
        assert not pattern.search(text), text
