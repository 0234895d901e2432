"""The verdict sentence of every example, rebuilt here from report.json's own numbers by a second,
independent reading of the rules (analysis/verdict.py), and shown on the page above the figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPORT_ROWS
from sitebuild import sample_rows, write_config
from test_browser import expected_shade

from attnreport.core.config import load_config
from attnreport.pipeline import build


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def name(text: str) -> str:
    text = " ".join(text.split())
    return "'" + (text if len(text) <= 40 else text[:39].rstrip() + "…") + "'"


def js_number(x: float) -> str:
    """The legend's number: three significant digits, below 0.001 as 2.53e-6."""
    if x and abs(x) < 1e-3:
        mantissa, exponent = f"{x:.2e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{float(f'{x:.3g}'):g}"


def expected_verdict(e: dict, labels: list[str]) -> str:
    """The sentence as the README states its rules, from the report entry alone."""
    p = e["probabilities"]
    ranked = sorted(labels, key=lambda k: (-p[k], labels.index(k)))
    parts = [f"Predicted {ranked[0]} ({pct(p[ranked[0]])}), not {ranked[1]} ({pct(p[ranked[1]])})"]
    a = e["attributions"].get("shapley") or e["attributions"]["occlusion"]
    method = "shapley" if "shapley" in e["attributions"] else "occlusion"
    unit = a["unit"]
    if unit == "token":
        keep = [i for i, s in enumerate(e["special"]) if not s]
        names = [e["text"][e["offsets"][i][0] : e["offsets"][i][1]] for i in keep]
        values = [a["values"][i] for i in keep]
        errors = [a["std_error"][i] for i in keep] if "std_error" in a else None
    else:
        names = [u["text"] for u in a["units"]]
        values, errors = a["values"], a.get("std_error")
    tiny = a["negligible"]
    shown = [
        i
        for i, v in enumerate(values)
        if abs(v) >= tiny and v != 0 and (errors is None or abs(v) >= 1.96 * errors[i])
    ]
    pro = sorted((i for i in shown if values[i] > 0), key=lambda i: (-values[i], i))[:3]
    con = sorted((i for i in shown if values[i] < 0), key=lambda i: (values[i], -i))[:2]
    pro_s, con_s = ", ".join(name(names[i]) for i in pro), ", ".join(name(names[i]) for i in con)
    if pro and con:
        parts.append(f"mainly because of {pro_s} (for) and {con_s} (against)")
    elif pro:
        parts.append(f"mainly because of {pro_s}")
    elif con:
        parts.append(f"despite {con_s} (against)")
    else:
        parts.append(f"no single {unit} moved it by {tiny:g} or more")
    rho = e["agreement_with_occlusion"].get(method) if method == "shapley" else None
    if rho is not None:
        parts.append(
            "occlusion agrees"
            if rho >= 0.5
            else "occlusion partly agrees"
            if rho > 0
            else "occlusion disagrees"
        )
    f, r = e["faithfulness"][method]["comprehensiveness"], e["faithfulness"]["random"]["comprehensiveness"]
    units = unit + "s"
    q = p[ranked[0]]
    if abs(f) < max(tiny, q / 200) and abs(r) < max(tiny, q / 200):
        trust = f"taking the top {units} away has no measurable effect"
    elif f >= 0:
        trust = f"these attributions remove {pct(f / q)} of the prediction when taken away"
    else:
        trust = f"taking the top {units} away raises the prediction by {pct(-f / q)}"
    if abs(f) >= max(tiny, q / 200) or abs(r) >= max(tiny, q / 200):
        trust += f" (random {units}: {pct(r / q)})"
    trust += {
        "reliable": ", reliable",
        "weak": ", weak: read them with care",
        "no better than chance": ", no better than chance: read them with care",
    }[trust_by_hand(e["faithfulness"][method], e["faithfulness"]["random"], a)]
    parts.append(trust)
    text = "; ".join(parts) + "."
    if e["label"] in labels and e["label"] != ranked[0]:
        text += f" Wrong: the text is labelled {e['label']}."
    return text


def trust_by_hand(f: dict, r: dict, a: dict) -> str:
    """The trust rule as the README states it, from the report entry alone: ten points of the
    output's range (a logit's is 10) beyond 1.96 standard errors of the random rankings."""
    span = {"probability": 1.0, "logit": 10.0}[a["output"]]
    margin = f["comprehensiveness"] - r["comprehensiveness"]
    noise = 1.96 * r["comprehensiveness_std_error"]
    if margin <= max(noise, a["negligible"]):
        return "no better than chance"
    if margin - noise >= 0.1 * span and f["sufficiency"] <= r["sufficiency"]:
        return "reliable"
    return "weak"


def test_every_trust_verdict_is_rebuilt_from_report_json(tiny_report):
    """Each example's verdict per view from its own figures, and the index's from the examples'."""
    report, _ = tiny_report
    seen = set()
    for e in report["examples"]:
        a = e["attributions"]["shapley"]
        r = e["faithfulness"]["random"]
        views = [m for m in e["faithfulness"] if m != "random"]
        assert sorted(e["trust"]) == sorted(views)
        for view in views:
            t = e["trust"][view]
            assert t["level"] == trust_by_hand(e["faithfulness"][view], r, a)
            assert t["sentence"].split(":")[0].endswith(t["level"])
            seen.add(t["level"])
        assert e["trust"]["shapley"]["sentence"].startswith("These attributions are ")
    assert seen  # (a tiny model of random weights: its views are no better than chance)
    index = report["analysis"]["trust"]
    for view, t in index.items():
        rows = [e["faithfulness"] for e in report["examples"]]
        margins = np.array([f[view]["comprehensiveness"] - f["random"]["comprehensiveness"] for f in rows])
        noise = 1.96 * margins.std(ddof=1) / np.sqrt(len(margins))
        assert t["examples"] == len(rows)
        assert t["margin"] == pytest.approx(margins.mean()) and t["noise"] == pytest.approx(noise)
        mean = {k: np.mean([f[view][k] for f in rows]) for k in ("comprehensiveness", "sufficiency")}
        rand = {k: np.mean([f["random"][k] for f in rows]) for k in ("comprehensiveness", "sufficiency")}
        a = report["examples"][0]["attributions"]["shapley"]
        expected = trust_by_hand(mean, rand | {"comprehensiveness_std_error": noise / 1.96}, a)
        assert t["level"] == expected


@pytest.mark.parametrize("negligible", [0.01, 0.0])
def test_every_verdict_is_rebuilt_from_report_json(tiny, tmp_path, negligible, request):
    if negligible == 0.01:  # the default: the session's report of REPORT_ROWS is that build
        report, config = request.getfixturevalue("tiny_report")
        assert config.analysis.negligible == negligible
    else:
        extra = f"[analysis]\nnegligible = {negligible}\n"
        config = load_config(write_config(tmp_path / "p", tiny.export("bert"), REPORT_ROWS, extra=extra))
        site = build(config, tmp_path / "site", progress=False).site
        report = json.loads((site / "report.json").read_text(encoding="utf-8"))
    labels = report["model"]["labels"]
    for e in report["examples"]:
        assert e["attributions"]["shapley"]["negligible"] == negligible
        assert e["summary"]["text"] == expected_verdict(e, labels)
        print(e["summary"]["text"])
        plains = [t["plain"] for t in e["summary"]["terms"]]
        assert any("comprehensiveness" in t["technical"] for t in e["summary"]["terms"])
        assert any("Spearman" in t["technical"] for t in e["summary"]["terms"]) == (
            e["agreement_with_occlusion"].get("shapley") is not None
        )
        assert plains[0] in e["summary"]["text"]


def test_the_page_opens_with_the_verdict_and_colours_on_a_fixed_scale(browser, tiny, tmp_path, sample_site):
    """The verdict above every figure, its terms on demand; attribution colours on the configured
    scale, clipped beyond it, neutral below the negligible effect, or by the text's own strongest
    effect at the switch; the trust verdict beside the figures; [UNK] tokens shown as their
    characters and counted on the page and the index; "+0.000" said as no measurable effect."""
    rows = sample_rows()
    model = tiny.export("bert")
    # the values do not depend on [analysis] negligible (it only decides what is shown as too small)
    report = json.loads((sample_site.site / "report.json").read_text())
    effects = np.array(
        [abs(v) for e in report["examples"] for v in e["attributions"]["shapley"]["values"] if v]
    )
    # thresholds inside the spread of this model's effects, so every kind of token appears
    negligible, scale = float(np.quantile(effects, 0.3)), float(np.quantile(effects, 0.8))
    extra = f"[analysis]\nnegligible = {negligible!r}\n[site]\nattribution_scale = {scale!r}\n"
    config = load_config(write_config(tmp_path / "b", model, rows, extra=extra))
    site = build(config, tmp_path / "site", progress=False).site
    report = json.loads((site / "report.json").read_text(encoding="utf-8"))
    unknown = {e["id"]: [i for i, t in enumerate(e["tokens"]) if t == "[UNK]"] for e in report["examples"]}
    assert any(unknown.values())  # the emoji and the right-to-left marks are outside the tiny vocabulary
    assert {e["id"]: e["unknown_tokens"] for e in report["examples"]} == unknown
    assert report["unknown_tokens"]["tokens"] == sum(map(len, unknown.values()))
    seen = set()
    page = browser.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    for e in report["examples"]:
        page.goto((site / e["page"]).as_uri())
        page.wait_for_load_state("load")
        assert page.text_content("#verdict") == e["summary"]["text"]
        # above the figures: before the token view and the heatmap in the page's order
        for figure in ("#tokens", "#heatmap"):
            assert page.evaluate(
                f"document.querySelector('#verdict').compareDocumentPosition("
                f"document.querySelector('{figure}')) & Node.DOCUMENT_POSITION_FOLLOWING"
            )
        assert not page.locator("#verdict-terms dd").first.is_visible()
        page.click("#verdict-terms summary")
        assert page.locator("#verdict-terms dt").all_text_contents() == [
            t["plain"] for t in e["summary"]["terms"]
        ]
        a = e["attributions"]["shapley"]
        assert a["negligible"] == pytest.approx(negligible)
        page.select_option("#view", "shapley")
        tokens = page.eval_on_selector_all(
            "#tokens .token",
            "ts => ts.map(t => ({cls: t.className.split(' '), w: t.style.getPropertyValue('--w')}))",
        )
        for i, (token, value, special) in enumerate(zip(tokens, a["values"], e["special"], strict=True)):
            assert ("unk" in token["cls"]) == (i in unknown[e["id"]])
            if special:
                continue
            share, kind = expected_shade(value, {"scale": scale, "negligible": negligible}, 0)
            assert kind in token["cls"] and float(token["w"]) == pytest.approx(share, abs=1e-3)
            seen.add("beyond" if abs(value) > scale else kind if kind == "neutral" else "scaled")
        legend = page.text_content("#legend")
        assert f"colour scale ±{js_number(scale)} (probability" in legend
        assert f"grey: effects below {js_number(negligible)}, too small to matter" in legend
        # the strongest effect said in words, and the switch to this text's own scale: its strongest
        # token in full colour, the others by their share of it, grey still below the negligible effect
        strongest = max(abs(v) for v, sp in zip(a["values"], e["special"], strict=True) if not sp)
        assert page.is_visible("#strongest")
        assert page.text_content("#strongest [data-strongest]").startswith(
            f"The strongest effect on this text is ±{js_number(strongest)} (probability), "
        )
        page.check("#own-scale")
        own = page.eval_on_selector_all(
            "#tokens .token", "ts => ts.map(t => t.style.getPropertyValue('--w'))"
        )
        assert page.get_attribute("#tokens", "data-scale") == "own"
        for w, value, special in zip(own, a["values"], e["special"], strict=True):
            if not special:
                share, _ = expected_shade(value, {"scale": strongest, "negligible": negligible}, 0)
                assert float(w) == pytest.approx(share, abs=1e-3)
        top = max((abs(v), i) for i, v in enumerate(a["values"]) if not e["special"][i])[1]
        assert float(own[top]) == (1.0 if strongest >= negligible else 0.0)
        seen.add("own scale, full colour" if strongest >= negligible else "own scale, all grey")
        assert f"colour scale ±{js_number(strongest)} (probability; this text's strongest effect" in (
            page.text_content("#legend")
        )
        page.uncheck("#own-scale")
        assert page.get_attribute("#tokens", "data-scale") == "fixed"
        assert f"colour scale ±{js_number(scale)} (probability" in page.text_content("#legend")
        if unknown[e["id"]]:
            assert page.get_attribute("#unknown-tokens", "data-count") == str(len(unknown[e["id"]]))
            assert "unknown to the model" in page.text_content("#legend")
        else:
            assert page.locator("#unknown-tokens").count() == 0
        cells = page.eval_on_selector_all(
            "table.faith td:not(.verdict-cell)", "ts => ts.map(t => t.textContent)"
        )
        numbers = [
            f[k] for _, f in sorted(e["faithfulness"].items()) for k in ("comprehensiveness", "sufficiency")
        ]
        assert cells == ["no measurable effect" if abs(x) < 5e-4 else f"{x:+.3f}" for x in numbers]
        # the verdict in words beside the figures, one per view, the rule on demand
        verdicts = page.eval_on_selector_all(
            "table.faith td.verdict-cell", "ts => ts.map(t => t.textContent)"
        )
        assert verdicts == [
            e["trust"][v]["level"] if v in e["trust"] else "–" for v in sorted(e["faithfulness"])
        ]
        assert page.text_content("#trust") == e["trust"]["shapley"]["sentence"]
        assert page.get_attribute("#trust", "data-level") == e["trust"]["shapley"]["level"]
        assert not page.locator("#trust-rule p").is_visible()
    assert {"beyond", "neutral", "scaled", "own scale, full colour"} <= seen
    assert page.evaluate("window.__pwned") is None
    page.goto((site / "index.html").as_uri())
    t = report["analysis"]["trust"]["shapley"]
    assert page.text_content("#trust") == f"Over the {t['examples']} texts: {t['sentence']}"
    assert page.get_attribute("#trust", "data-level") == t["level"]
    assert page.get_attribute("#unknown-tokens", "data-count") == str(report["unknown_tokens"]["tokens"])
    assert page.locator("#unknown-tokens a").count() == sum(1 for v in unknown.values() if v)
    assert problems == []
