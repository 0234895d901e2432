"""The index page at scale: bytes, build time and Chromium time to a usable list.

    python benchmarks/index.py [--examples 1000 10000 100000]

For N synthetic examples (ticket-like texts of 40-400 characters, three labels) the index is
built twice in one run: as attnreport builds it (the list as JSON columns, one page of rows
drawn by the script) and as the baseline, every example as a row of markup (the index before
paging; the same template with the page size set to N). For each: index.html bytes (and
gzip bytes, as GitHub Pages sends them), render time in Python, and in headless Chromium
(Debian's, from file://) the time from navigation start until the list shows its rows, and
the time to apply a text filter. No model is run: the report holds only the example list.
"""

from __future__ import annotations

import argparse
import gzip
import random
import tempfile
import time
from pathlib import Path

import attnreport.site.build as site_build
from attnreport.site.pages import SitePlan
from attnreport.testing import index_example, model_card

LABELS = ["urgent", "complaint", "question"]
WORDS = ["my", "card", "was", "charged", "twice", "please", "refund", "the", "order", "account", "locked"]
WORDS += ["pharmacy", "refill", "rent"]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def plan(n: int) -> SitePlan:
    rng = random.Random(0)
    examples = []
    for i in range(n):
        label, predicted = rng.choice(LABELS), rng.choice(LABELS)
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 70)))
        examples.append(
            index_example(
                f"t{i:06d}", text, label=label, prediction=predicted, confidence=round(rng.random(), 6)
            )
        )
    card = model_card(
        layers=6,
        heads=12,
        hidden_size=384,
        max_positions=512,
        labels=LABELS,
        max_abs_diff={"attentions": 2e-6},
    )
    # only what the index template reads: no metrics, atlas or faithfulness, just the list
    report = {"generator": "attnreport", "model": {"notes": {}}, "metrics": None, "heads": []}
    report["analysis"] = {"faithfulness": {}}
    report["examples"] = examples
    return SitePlan(title=f"{n} examples", card=card, report=report)


def build(p: SitePlan, out: Path, page_rows: int) -> float:
    saved = site_build.PAGE_ROWS
    site_build.PAGE_ROWS = page_rows
    try:
        start = time.perf_counter()
        site_build.write_site(p, out)
        return time.perf_counter() - start
    finally:
        site_build.PAGE_ROWS = saved


def browser_times(browser, index: Path) -> tuple[float, float]:
    """(ms from navigation start to the list's rows, ms to filter the list by a word)."""
    page = browser.new_page()
    page.goto(index.as_uri(), timeout=600_000)
    page.wait_for_selector("#examples tbody tr")
    shown = page.evaluate("performance.now()")
    filtered = page.evaluate(
        """() => { const t0 = performance.now(); const f = document.getElementById('filter');
        f.value = 'refund pharmacy'; f.dispatchEvent(new Event('input'));
        return performance.now() - t0; }"""
    )
    page.close()
    return shown, filtered


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, nargs="+", default=[1000, 10000, 100000])
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    columns = ("examples", "index", "bytes", "gzip", "build s", "rows ms", "filter ms")
    print("{:>9} {:>9} {:>12} {:>10} {:>8} {:>9} {:>9}".format(*columns))
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for n in args.examples:
            p = plan(n)
            results = {}
            for name, rows in (("paged", site_build.PAGE_ROWS), ("baseline", n)):
                out = Path(tmp) / f"{name}-{n}"
                seconds = build(p, out, rows)
                raw = (out / "index.html").read_bytes()
                shown, filtered = browser_times(browser, out / "index.html")
                results[name] = shown
                print(
                    f"{n:>9} {name:>9} {len(raw):>12,} {len(gzip.compress(raw, 6)):>10,} "
                    f"{seconds:>8.2f} {shown:>9.0f} {filtered:>9.0f}"
                )
            ratio = results["baseline"] / results["paged"]
            print(f"{'':>9} rows shown {ratio:.1f}x sooner than the baseline")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
