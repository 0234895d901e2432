"""3D scenes: build time, JSON / glb bytes and render time, on synthetic data.

    python benchmarks/scenes.py [--points 1000 10000] [--size 960 720] [--repeats 3] [--site SITE]
    python benchmarks/scenes.py --browser-only --site SITE [--browser-points 10000 50000]

Then, in Chromium (Debian's, software WebGL, from file://): the time from navigation start to the
viewer's first drawn frame (its ``scene3d:first-frame`` performance mark) on decision scenes
of 10,000 and 50,000 points and, with ``--site`` (a built demo), on its index and first example page.

Decision space: ``N`` pooled vectors (d = 384, four clusters) under a linear head with four
classes, grid 24 (the default); the analysis step (PCA and the head on the grid) is timed
apart from the scene. Flow: one 128-token, 6-layer, 12-head trace with realistic attention
(softmax of N(0, 3²) logits), top 3 edges. For each: scene build, ``to_json`` + ``json.dumps``
(bytes, and gzip bytes as a server would send them), ``export_glb`` (bytes), and ``render``
to PNG and WebP at ``--size``. Best of ``--repeats`` for the cheap steps, one run for the
renders. About a minute.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from attnreport.analysis.decision import decision_space
from attnreport.analysis.rollout import rollout
from attnreport.scenes import decision_scene, export_glb, flow_scene, render, to_json
from attnreport.testing import make_trace, many_points, random_attentions, write_page

LABELS = ["billing", "bug", "praise", "question"]


def best(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def decision_inputs(n: int, rng: np.random.Generator):
    d = 384
    centres = rng.standard_normal((len(LABELS), d)) * 2.0
    y = rng.integers(0, len(LABELS), n)
    pooled = centres[y] + rng.standard_normal((n, d)) * 1.5
    weights = centres / np.linalg.norm(centres, axis=1, keepdims=True)

    def head(points):
        return np.asarray(points, dtype=np.float64) @ weights.T

    predictions = head(pooled).argmax(axis=1)
    truth = [LABELS[c] if i % 7 else None for i, c in enumerate(y)]
    texts = [f"synthetic ticket {i}: the card was charged twice for my order" for i in range(n)]
    links = [f"examples/ex-{i}.html" for i in range(n)]
    return pooled, predictions, head, truth, texts, links


def flow_inputs(rng: np.random.Generator, n: int = 128, layers: int = 6, heads: int = 12, d: int = 384):
    attentions = random_attentions(layers, heads, n, scale=3.0, random_state=rng)
    hidden = np.cumsum(rng.standard_normal((layers + 1, n, d)), axis=0)
    tokens = ["[CLS]"] + [f"tok{i}" for i in range(1, n - 1)] + ["[SEP]"]
    trace = make_trace(attentions, tokens=tokens, id="bench", text="", hidden=hidden)
    return trace, rollout(attentions)[0]


def outputs(scene, out: Path, stem: str, size, repeats: int) -> dict:
    t_json, text = best(lambda: json.dumps(to_json(scene), separators=(",", ":")), repeats)
    start = time.perf_counter()
    glb = export_glb(scene, out / f"{stem}.glb")
    t_glb = time.perf_counter() - start
    start = time.perf_counter()
    render(scene, out / f"{stem}.png", size=size)
    t_png = time.perf_counter() - start
    start = time.perf_counter()
    render(scene, out / f"{stem}.webp", size=size)
    t_webp = time.perf_counter() - start
    return {
        "json": t_json,
        "json_kb": len(text) / 1e3,
        "json_gz_kb": len(gzip.compress(text.encode(), mtime=0)) / 1e3,
        "glb": t_glb,
        "glb_kb": glb.stat().st_size / 1e3,
        "png": t_png,
        "png_kb": (out / f"{stem}.png").stat().st_size / 1e3,
        "webp": t_webp,
        "webp_kb": (out / f"{stem}.webp").stat().st_size / 1e3,
    }


def decision_row(n: int, rng: np.random.Generator, out: Path, size, repeats: int) -> dict:
    pooled, predictions, head, truth, texts, links = decision_inputs(n, rng)
    start = time.perf_counter()
    space = decision_space(pooled, predictions, head, labels=LABELS)
    t_space = time.perf_counter() - start
    predicted = [LABELS[p] for p in predictions]
    build = partial(decision_scene, space, truth=truth, predicted=predicted, texts=texts, links=links)
    t_build, scene = best(build, repeats)
    triangles = sum(len(mesh.triangles) for mesh in scene.meshes)
    row = {"scene": f"decision, {n:,} points", "analysis": t_space, "build": t_build}
    row.update(outputs(scene, out, f"decision-{n}", size, repeats))
    row["extra"] = f"{len(scene.meshes)} surfaces, {triangles:,} triangles"
    return row


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--disable-background-networking",
]
FIRST_FRAME = "scene3d:first-frame"


def first_frame_ms(browser, url: str, repeats: int) -> float:
    """Navigation start to the viewer's first drawn frame (its performance mark), best of `repeats`
    fresh pages (1200 x 900 CSS pixels, no cache between them)."""
    times = []
    for _ in range(repeats):
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.goto(url)
        page.wait_for_function(f"performance.getEntriesByName('{FIRST_FRAME}').length > 0", timeout=60_000)
        times.append(page.evaluate(f"performance.getEntriesByName('{FIRST_FRAME}')[0].startTime"))
        context.close()
    return min(times)


def browser_rows(
    site: Path | None, out: Path, repeats: int, points: list[int]
) -> list[tuple[str, float, float]]:
    """(page, first frame ms, page bytes) in Chromium (software WebGL) from file://: the demo's
    index and first example (when `site` is given) and a decision scene of each of `points`."""
    from playwright.sync_api import sync_playwright

    pages = []
    if site is not None:
        example = sorted((site / "examples").glob("*.html"))[0]
        pages += [
            ("demo index (decision space)", site / "index.html"),
            (f"demo {example.name} (flow)", example),
        ]
    for n in points:
        pages.append((f"{n:,}-point decision scene", write_page(out / f"many-{n}", many_points(n))))
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for name, path in pages:
                rows.append((name, first_frame_ms(browser, path.as_uri(), repeats), path.stat().st_size))
        finally:
            browser.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--size", type=int, nargs=2, default=[960, 720])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--site", type=Path, help="a built demo site, for time to first frame on its pages")
    ap.add_argument("--browser-only", action="store_true", help="only the Chromium first-frame figures")
    ap.add_argument(
        "--browser-points", type=int, nargs="+", default=[10000, 50000], help="scenes timed in Chromium"
    )
    args = ap.parse_args()
    if args.browser_only:
        with tempfile.TemporaryDirectory() as tmp:
            print_browser(browser_rows(args.site, Path(tmp), args.repeats, args.browser_points))
        return 0
    size = tuple(args.size)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for n in args.points:
            rows.append(decision_row(n, rng, out, size, args.repeats))
            print(f"done: {rows[-1]['scene']}", flush=True)
        trace, relevance = flow_inputs(rng)
        t_build, scene = best(partial(flow_scene, trace, rollout_row=relevance, top_k=3), args.repeats)
        edges = sum(len(lines.segments) for lines in scene.lines)
        row = {"scene": "flow, 128 tok × 6 L × 12 H", "analysis": float("nan"), "build": t_build}
        row.update(outputs(scene, out, "flow", size, args.repeats))
        row["extra"] = f"{edges:,} edges; {scene.notes[0]}"
        rows.append(row)

    print(f"\nscenes at {size[0]}×{size[1]}; times in seconds, sizes in kB\n")
    header = (
        f"{'scene':<28} {'analysis':>8} {'build':>7} {'json':>6} {'json kB':>8} {'gz kB':>7} "
        f"{'glb':>6} {'glb kB':>8} {'png':>6} {'png kB':>7} {'webp':>6} {'webp kB':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        analysis = "—" if np.isnan(r["analysis"]) else f"{r['analysis']:.3f}"
        print(
            f"{r['scene']:<28} {analysis:>8} {r['build']:>7.3f} {r['json']:>6.3f} {r['json_kb']:>8.0f} "
            f"{r['json_gz_kb']:>7.0f} {r['glb']:>6.2f} {r['glb_kb']:>8.0f} {r['png']:>6.2f} "
            f"{r['png_kb']:>7.0f} {r['webp']:>6.2f} {r['webp_kb']:>7.0f}"
        )
    for r in rows:
        print(f"  {r['scene']}: {r['extra']}")
    with tempfile.TemporaryDirectory() as tmp:
        print_browser(browser_rows(args.site, Path(tmp), args.repeats, args.browser_points))
    return 0


def print_browser(rows) -> None:
    print(
        "\nChromium (software WebGL, file://): navigation start to the viewer's first frame, best of runs\n"
    )
    for name, ms, size in rows:
        print(f"{name:<40} {ms:>8.0f} ms {size / 1e3:>8.0f} kB page")


if __name__ == "__main__":
    sys.exit(main())
