"""Results by data group (`[data] group_column`) against loops over the report's examples written
here, Wilson's formula by hand, the decision scene's colours, and the index's filter in Chromium."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from sitebuild import write_config

from attnreport.analysis.data_groups import accuracy_interval
from attnreport.core.config import DataConfig, ModelConfig, load_config
from attnreport.core.errors import InputError
from attnreport.kinds.classification import make_tracer
from attnreport.pipeline import build
from attnreport.scenes.palette import UNLABELLED, hex_to_rgb
from attnreport.trace import Row
from attnreport.trace.inputs import read_rows

ROWS = [
    {"id": "a1", "text": "refund the money, please", "label": "alpha", "domain": "bank"},
    {"id": "a2", "text": "my card was charged twice", "label": "beta", "domain": "bank"},
    {"id": "a3", "text": "lock my account now", "label": "alpha", "domain": "bank"},
    {"id": "a4", "text": "the transfer never arrived", "label": "gamma", "domain": "bank"},
    {"id": "b1", "text": "my fever is high", "label": "beta", "domain": "<b>clinic</b>"},
    {"id": "b2", "text": "a cough and a fever since monday", "label": "alpha", "domain": "<b>clinic</b>"},
    {"id": "b3", "text": "the tablets make me dizzy", "label": "gamma", "domain": "<b>clinic</b>"},
    {"id": "c1", "text": "where is my parcel", "label": "alpha"},
]
SYMPTOMS = ("fever", "cough", "dizzy")


@pytest.fixture(scope="module")
def grouped_site(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("groups")
    extra = '[analysis.token_groups]\nsymptoms = ["fever", "cough", "dizzy"]\n'
    path = write_config(root / "p", tiny.export("bert"), ROWS, extra=extra)
    path.write_text(
        path.read_text().replace('path = "data.jsonl"', 'path = "data.jsonl"\ngroup_column = "domain"')
    )
    site = build(load_config(path), root / "site", progress=False).site
    return site, json.loads((site / "report.json").read_text())


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_interval_is_the_formula():
    for k, n in [(0, 3), (2, 3), (7, 10), (50, 50), (13, 21)]:
        assert accuracy_interval(k, n) == pytest.approx(_wilson(k, n), abs=1e-9)
    assert accuracy_interval(0, 0) is None


def test_each_group_is_a_loop_over_its_examples(grouped_site):
    _, report = grouped_site
    examples = report["examples"]
    labels = report["model"]["labels"]
    groups = report["groups"]
    assert groups["column"] == "domain" and groups["ungrouped"] == 1
    assert [g["name"] for g in groups["groups"]] == ["bank", "<b>clinic</b>"]
    assert [e["group"] for e in examples] == [r.get("domain") for r in ROWS]
    for g in groups["groups"]:
        mine = [e for e in examples if e["group"] == g["name"]]
        confusion = np.zeros((len(labels), len(labels)), int)
        for e in mine:
            confusion[labels.index(e["label"]), labels.index(e["prediction"])] += 1
        right = int(np.trace(confusion))
        assert g["examples"] == g["labelled"] == len(mine)
        assert g["confusion"] == confusion.tolist()
        assert g["accuracy"] == pytest.approx(right / len(mine))
        assert g["accuracy_interval"] == pytest.approx(_wilson(right, len(mine)), abs=1e-6)
        confidences = [e["probabilities"][e["prediction"]] for e in mine]
        assert g["mean_confidence"] == pytest.approx(np.mean(confidences), abs=1e-6)
        low, high = g["confidence_interval"]
        assert min(confidences) - 1e-6 <= low <= g["mean_confidence"] <= high <= max(confidences) + 1e-6
        # the token groups of a data group count that group's texts only
        with_symptoms = [e for e in mine if re.search(r"\b(" + "|".join(SYMPTOMS) + r")\b", e["text"])]
        assert g["token_groups"]["texts"] == len(mine)
        assert g["token_groups"]["groups"]["symptoms"]["texts"] == len(with_symptoms)
        # faithfulness: the mean over the group's examples
        for method, f in g["faithfulness"].items():
            values = [e["faithfulness"][method]["comprehensiveness"] for e in mine]
            assert f["comprehensiveness"] == pytest.approx(np.mean(values), abs=1e-6)


def _scene_data(html: str, choice: str) -> dict:
    figure = re.search(
        rf'<figure class="scene3d" data-choice="{choice}".*?<script type="application/json" '
        r'class="scene-data">(.*?)</script>',
        html,
        re.DOTALL,
    )
    return json.loads(figure.group(1))


def test_the_decision_space_can_be_coloured_by_group(grouped_site):
    site, report = grouped_site
    html = (site / "index.html").read_text(encoding="utf-8")
    assert 'data-choice="group"' in html and "by domain" in html
    assert "<b>clinic</b>" not in html and "&lt;b&gt;clinic&lt;/b&gt;" in html  # data is text, not markup
    scene = _scene_data(html, "group")
    colours = np.array(scene["points"]["color"]).reshape(-1, 3)
    groups = [e["group"] for e in report["examples"]]
    assert len(colours) == len(groups)
    by = {}
    for g, c in zip(groups, colours, strict=True):
        by.setdefault(g, set()).add(tuple(c))
    assert all(len(c) == 1 for c in by.values())  # one colour per group
    assert len({next(iter(c)) for c in by.values()}) == len(by)  # and a different one each
    assert by[None] == {tuple(hex_to_rgb(UNLABELLED))}
    assert scene["meshes"] == []  # class surfaces would read as groups
    assert any(n.startswith("colour: domain") for n in scene["notes"])
    # the label view is unchanged
    label_scene = _scene_data(html, f"L{report['model']['layers']}")
    assert label_scene["points"]["xyz"] == scene["points"]["xyz"]
    assert label_scene["points"]["outline"] == scene["points"]["outline"]
    assert any(n.startswith("surfaces:") for n in label_scene["notes"])
    assert not any(n.startswith("surfaces:") for n in scene["notes"])


def test_the_index_shows_groups_and_filters_by_them(grouped_site, browser):
    site, report = grouped_site
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto((site / "index.html").as_uri())
    rows = page.locator("#data-groups table.data-groups tr[data-group]")
    assert rows.count() == 2
    clinic = next(g for g in report["groups"]["groups"] if g["name"] == "<b>clinic</b>")
    row = page.locator('#data-groups tr[data-group="<b>clinic</b>"]')
    assert row.locator("th").text_content() == "<b>clinic</b>"
    assert row.locator("td.accuracy").text_content().startswith(f"{100 * clinic['accuracy']:.1f}%")
    page.select_option("#f-group", "<b>clinic</b>")
    ids = page.eval_on_selector_all(
        "#examples tbody tr td:first-child a", "els => els.map(e => e.textContent)"
    )
    assert ids == [e["id"] for e in report["examples"] if e["group"] == "<b>clinic</b>"]
    page.select_option("#f-group", "")
    assert page.locator("#examples tbody tr").count() == len(ROWS)
    page.click('button[data-choice="group"]')
    assert page.locator('figure.scene3d[data-choice="group"]').is_visible()
    assert "bank" in page.locator('figure.scene3d[data-choice="group"] figcaption').text_content()
    assert page.evaluate("window.__pwned") is None
    assert errors == []


def test_a_group_column_no_row_has_is_an_error(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a", "domain": "x"}\n{"text": "b"}\n', encoding="utf-8")
    rows = list(read_rows(DataConfig(path=data, group_column="domain")))
    assert [r.group for r in rows] == ["x", None]
    with pytest.raises(InputError, match=r"d\.jsonl: no row has a value in column 'domian'"):
        list(read_rows(DataConfig(path=data, group_column="domian")))
    csv = tmp_path / "d.csv"
    csv.write_text("text,domain\nhello,\nbye,\n", encoding="utf-8")
    with pytest.raises(InputError, match="group_column"):
        list(read_rows(DataConfig(path=csv, group_column="domain")))


def test_a_cached_trace_takes_the_rows_group(tiny, tmp_path):
    tracer = make_tracer(tiny.export("bert"), ModelConfig(path=tmp_path), tmp_path / "cache", quantized=False)
    first = next(tracer.trace([Row(id="1", text="lock my card", label=None, line=1, group="bank")]))
    again = next(tracer.trace([Row(id="2", text="lock my card", label=None, line=1, group="shop")]))
    assert (first.group, again.group, tracer.stats.cached) == ("bank", "shop", 1)


def test_a_generation_report_refuses_a_group_column(copy_model, tmp_path):
    from attnreport.core.config import GenerateConfig, ReportConfig
    from attnreport.core.errors import ConfigError

    config = ReportConfig(
        model=ModelConfig(path=copy_model),
        data=DataConfig(prompts=["abc"], group_column="domain"),
        generate=GenerateConfig(enabled=True),
        cache_dir=tmp_path / "cache",
    )
    with pytest.raises(ConfigError, match="group_column"):
        build(config, tmp_path / "site", progress=False)
    assert not (tmp_path / "site").exists()
