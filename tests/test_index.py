"""The index's example list at scale: columns in the page, one page of rows drawn, filters and
sorting over every example, checked in Chromium against the same operations done in Python."""

from __future__ import annotations

import json
import random

import pytest
from sitebuild import HOSTILE

from attnreport.core.modelcard import ModelCard
from attnreport.site.build import write_site
from attnreport.site.listing import PAGE_ROWS, TEXT_CHARS, cut, example_columns
from attnreport.site.pages import SitePlan
from attnreport.testing import index_example

EXAMPLES = 2_345


def test_cut_keeps_short_texts_and_marks_cuts():
    assert cut("  two\n words ") == "two words"
    long = "word " * 100
    shortened = cut(long)
    assert len(shortened) <= TEXT_CHARS and shortened.endswith("…")
    assert long.startswith(shortened[:-1])
    assert cut("x" * TEXT_CHARS) == "x" * TEXT_CHARS


def test_columns_follow_the_report_order():
    examples = [
        index_example("a", "t1", label="x", prediction="x", confidence=0.9),
        index_example("b", "t2", label=None, prediction="y", confidence=0.5),
        index_example("c", "t3", label="y", prediction="x", confidence=None),
    ]
    columns = example_columns(examples)
    assert columns["id"] == ["a", "b", "c"]
    assert columns["correct"] == [1, None, 0]
    assert columns["confidence"] == [0.9, 0.5, None]
    assert columns["page"] == ["examples/a.html", "examples/b.html", "examples/c.html"]


@pytest.fixture(scope="module")
def big_index(tiny, sample_site, tmp_path_factory):
    """A real tiny site's report, its examples multiplied into thousands of synthetic ones, so
    the index is tested at a size where drawing every row would show."""
    root = tmp_path_factory.mktemp("index")
    model = tiny.export("bert")
    report = json.loads((sample_site.site / "report.json").read_text(encoding="utf-8"))
    labels = ["alpha", "beta"]
    rng = random.Random(7)
    examples = []
    for i in range(EXAMPLES):
        label = rng.choice(labels + [None])
        predicted = rng.choice(labels)
        topic = rng.choice(["rent", "card"])
        text = HOSTILE[i % len(HOSTILE)] if i % 10 == 0 else f"ticket {i} about {topic}"
        confidence = None if i % 97 == 0 else round(rng.random(), 6)
        examples.append(
            index_example(f"ex-{i:05d}", text, label=label, prediction=predicted, confidence=confidence)
        )
    report["examples"] = examples
    plan = SitePlan(title="Big index", card=ModelCard.load(model), report=report)
    write_site(plan, root / "big")
    return root / "big", examples


def _ids(page) -> list[str]:
    links = "#examples tbody tr td:first-child a"
    return page.eval_on_selector_all(links, "els => els.map(e => e.textContent)")


def test_index_draws_one_page_and_filters_and_sorts_every_example(browser, big_index):
    site, examples = big_index
    html = (site / "index.html").read_text(encoding="utf-8")
    listed = html.split('id="examples"')[1].split("</tbody>")[0]
    assert listed.count("<tr class=") == PAGE_ROWS  # only the first page is markup
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto((site / "index.html").as_uri())
    assert _ids(page) == [e["id"] for e in examples[:PAGE_ROWS]]
    assert page.locator("#examples tbody tr").count() == PAGE_ROWS
    assert page.evaluate("window.__pwned") is None

    # the last page, through the pager
    pages = -(-EXAMPLES // PAGE_ROWS)
    for _ in range(pages - 1):
        page.click("#next")
    assert page.is_disabled("#next")
    assert _ids(page) == [e["id"] for e in examples[(pages - 1) * PAGE_ROWS :]]

    # filters against the same filters in Python
    page.select_option("#f-label", "beta")
    page.select_option("#f-correct", "0")
    wrong_beta = [e["id"] for e in examples if e["label"] == "beta" and e["correct"] is False]
    assert _ids(page) == wrong_beta[:PAGE_ROWS]
    assert f"{len(wrong_beta)} of {EXAMPLES} match" in page.text_content("#shown")
    page.select_option("#f-correct", "")
    page.select_option("#f-label", "")
    page.fill("#filter", "<script>")
    hostile = [e["id"] for e in examples if "<script>" in e["text"].lower()]
    assert hostile and _ids(page) == hostile[:PAGE_ROWS]
    texts = page.eval_on_selector_all("#examples tbody td.text", "els => els.map(e => e.textContent)")
    assert texts[0] == cut(HOSTILE[0])
    page.fill("#filter", "")

    # sorting by confidence: ascending over every example, missing values last, ties in report order
    page.click("th[data-column=confidence]")
    known = sorted((e for e in examples if e["confidence"] is not None), key=lambda e: e["confidence"])
    expected = [e["id"] for e in known] + [e["id"] for e in examples if e["confidence"] is None]
    assert _ids(page) == expected[:PAGE_ROWS]
    page.click("th[data-column=confidence]")
    known.sort(key=lambda e: -e["confidence"])
    expected = [e["id"] for e in known] + [e["id"] for e in examples if e["confidence"] is None]
    assert _ids(page) == expected[:PAGE_ROWS]
    assert page.get_attribute("th[data-column=confidence]", "aria-sort") == "descending"
    assert errors == []
    page.close()


def test_attention_by_distance_is_reported_and_shown(sample_site):
    """The small real site behind `big_index`: pair counts follow from the tokens alone (every
    content pair at distance d, both directions, no windows), and the index shows the numbers."""
    site = sample_site.site
    report = json.loads((site / "report.json").read_text(encoding="utf-8"))
    decay = report["analysis"]["attention_by_distance"]
    assert len(decay["relative_weight"]) == report["model"]["layers"]
    expected = []
    for lo, hi in decay["bins"]:
        count = 0
        for ex in report["examples"]:
            content = [i for i, s in enumerate(ex["special"]) if not s]
            count += sum(1 for i in content for j in content if lo <= abs(i - j) <= hi)
        expected.append(count)
    assert decay["pairs"] == expected
    html = (site / "index.html").read_text(encoding="utf-8")
    table = html.split('id="distance"')[1].split("</table>")[0]
    for row in decay["relative_weight"]:
        for x in row:
            assert f">{x:.2f}<" in table
