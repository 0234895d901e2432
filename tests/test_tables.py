"""Small tables of the site read as a reviewer reads them: probabilities in the model's own label
order (not the alphabet's), and a confusion diagonal of zero with examples behind it shaded as a
miss, not as a success."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser

from sitebuild import sample_rows, write_config

from attnreport.core.config import load_config
from attnreport.pipeline import build
from attnreport.trace import Tracer

#: the tiny models' labels renamed so that the model's order is not alphabetical
RENAMED = ["zeta", "alpha", "mu"]


class Tables(HTMLParser):
    """The cells (class, title, text) of every table with the given class."""

    def __init__(self, css: str):
        super().__init__()
        self.css, self.depth, self.rows = css, 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and self.css in (attrs.get("class") or "").split():
            self.depth = 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.rows[-1].append(
                {"tag": tag, "class": attrs.get("class") or "", "title": attrs.get("title"), "text": ""}
            )

    def handle_endtag(self, tag):
        if tag == "table":
            self.depth = 0

    def handle_data(self, text):
        if self.depth and self.rows and self.rows[-1]:
            self.rows[-1][-1]["text"] += text.strip()


def cells(html: str, css: str) -> list[list[dict]]:
    parser = Tables(css)
    parser.feed(html)
    return parser.rows


def test_probabilities_in_label_order_and_a_zero_diagonal_is_not_good(tiny, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny.export("bert"), model)
    manifest = json.loads((model / "attnreport.json").read_text())
    manifest["labels"] = RENAMED
    (model / "attnreport.json").write_text(json.dumps(manifest))
    texts = [r["text"] for r in sample_rows()]
    predicted = [int(t.logits.argmax()) for t in Tracer(model, cache_dir=tmp_path / "c").trace_texts(texts)]
    # one label given to every text the model does not predict it for: its diagonal is 0 over > 0 rows
    missed = min(range(3), key=predicted.count)
    other = (missed + 1) % 3
    rows = [
        {"id": f"r{i}", "text": t, "label": RENAMED[missed if p != missed else other]}
        for i, (t, p) in enumerate(zip(texts, predicted, strict=True))
    ]
    extra = "[analysis]\nattributions = []\nflow = false\nfaithfulness = false\n[site]\nscenes = false\n"
    site = build(
        load_config(write_config(tmp_path / "p", model, rows, extra=extra)), tmp_path / "site", progress=False
    ).site
    report = json.loads((site / "report.json").read_text())

    for entry in report["examples"]:
        page = (site / entry["page"]).read_text()
        shown = [row[0]["text"] for row in cells(page, "probs")]
        assert shown == RENAMED
        percents = [float(re.sub("[^0-9.]", "", row[2]["text"])) for row in cells(page, "probs")]
        assert percents == [round(100 * entry["probabilities"][name], 1) for name in RENAMED]

    confusion = report["metrics"]["confusion"]
    table = cells((site / "index.html").read_text(), "confusion")
    assert [c["text"] for c in table[0][1:]] == RENAMED
    assert confusion[missed][missed] == 0 and sum(confusion[missed]) > 0  # the case under test
    for i, row in enumerate(table[1:]):
        for j, cell in enumerate(row[1:]):
            v, total = confusion[i][j], sum(confusion[i])
            assert cell["text"] == str(v)
            classes = set(cell["class"].split())
            if i == j and v:
                assert classes == {"diag"}
            elif i == j:
                assert classes == ({"diag", "none"} if total else set())
                assert (cell["title"] is not None) == bool(total)
            else:
                assert classes == ({"off"} if v else set())
