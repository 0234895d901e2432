"""Our example page against BertViz, side by side on one ~107-token MiniLM input.

    python benchmarks/page_size.py [--tokens 107] [--long 512] [--browser]

BertViz (`pip install bertviz`; a baseline here, not a dependency) gets the attention of a
transformers MiniLM run with `output_attentions=True` (the demo's base model: the fine-tuned
checkpoint is only kept as ONNX) and writes `head_view` and `model_view` HTML with
`html_action="return"`; it is also fed our own traced attention (same numbers as our page).
We build the demo model's site for the same text with the real pipeline into a fresh cache
(trace, attributions, faithfulness, flow, 3D scene, page). Printed: bytes of each (and gzip,
as a web server sends them), our page apart from the assets every page shares (counted once),
the ratio, our build time, what a 512-token input costs us, and the outside requests each
page makes (BertViz's script sources; ours: none). `--browser` also opens each page in
Debian's Chromium with every outside request blocked and counted.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

URL = re.compile(r"""https?://[^\s'"<>)]+""")


def gz(data: bytes) -> int:
    return len(gzip.compress(data, 6, mtime=0))


def mb(n: int) -> str:
    return f"{n / 1e6:8.2f} MB" if n >= 100_000 else f"{n / 1e3:8.1f} KB"


def outside_sources(html: str) -> list[str]:
    """URLs the page fetches: <script src>, <link href>, and require.js paths."""
    found = re.findall(r"""<(?:script|link|img)[^>]*?(?:src|href)\s*=\s*["'](https?://[^"']+)""", html)
    for block in re.findall(r"require\.config\((.*?)\)", html, flags=re.S):
        found += URL.findall(block)
    return sorted(set(found))


def pick_text(tokenizer, n: int) -> dict:
    """The demo text closest to `n` tokens, or demo texts joined to `n` when none is within 10%."""
    from attnreport.demo import demo_rows

    rows = demo_rows()
    sizes = [len(tokenizer.encode(r["text"])) for r in rows]
    best = min(range(len(rows)), key=lambda i: (abs(sizes[i] - n), rows[i]["id"]))
    if abs(sizes[best] - n) <= 0.1 * n:
        return rows[best]
    return {"id": f"joined-{n}", "text": long_text(tokenizer, n)}


def long_text(tokenizer, n: int) -> str:
    """Demo texts joined until the input fills `n` tokens with its special tokens."""
    from attnreport.demo import demo_rows

    words = " ".join(r["text"] for r in demo_rows()).split()
    lo, hi = 1, len(words)
    while lo < hi:  # the longest prefix of words that fits
        mid = (lo + hi + 1) // 2
        if len(tokenizer.encode(" ".join(words[:mid]))) <= n:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def build_ours(model_dir: Path, rows: list[dict], work: Path) -> tuple[Path, dict]:
    """The real pipeline on `rows` into a fresh cache; returns the site and the times."""
    import attnreport.pipeline as pipeline
    from attnreport.core.config import DataConfig, ModelConfig, ReportConfig, SiteConfig

    work.mkdir(parents=True, exist_ok=True)
    data = work / "data.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    config = ReportConfig(
        title="benchmark",
        model=ModelConfig(path=model_dir),
        data=DataConfig(path=data),
        site=SiteConfig(theme="light"),
        cache_dir=work / "cache",
    )
    times = {}
    real = pipeline.write_site

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            times["render"] = time.perf_counter() - start

    pipeline.write_site = timed
    try:
        start = time.perf_counter()
        site = pipeline.build(config, work / "site", log=lambda m: None, progress=False).site
        times["cold"] = time.perf_counter() - start
        start = time.perf_counter()
        pipeline.build(config, work / "site", log=lambda m: None, progress=False)
        times["warm"] = time.perf_counter() - start
    finally:
        pipeline.write_site = real
    return site, times


def page_bytes(site: Path) -> dict:
    """One example page's own files and the shared assets, in bytes (raw and gzip)."""
    report = json.loads((site / "report.json").read_text(encoding="utf-8"))
    page = site / report["examples"][0]["page"]
    html = page.read_text(encoding="utf-8")
    own = [page]
    for ref in sorted(set(re.findall(r'(?:src|href)="\.\./(scenes/[^"#]+)"', html))):
        own.append(site / ref)
    shared = sorted((site / "assets").iterdir())
    used = {m for m in re.findall(r'(?:src|href)="\.\./(assets/[^"#]+)"', html)}
    blocks = re.findall(r'<script type="application/json"([^>]*)>(.*?)</script>', html, flags=re.S)
    inside = {"attention data (8-bit, deflated)": 0, "3D scene data": 0, "other page data": 0}
    for attrs, body in blocks:
        if "scene-data" in attrs:
            inside["3D scene data"] += len(body.encode())
        else:
            data = json.loads(body)
            packed = sum(len(json.dumps(data[k])) for k in ("attention", "rollout_matrix") if k in data)
            inside["attention data (8-bit, deflated)"] += packed
            inside["other page data"] += len(body.encode()) - packed
    inside["markup and text"] = len(html.encode()) - sum(inside.values())
    return {
        "inside": inside,
        "page": page,
        "own": {p.relative_to(site).as_posix(): p.stat().st_size for p in own},
        "own_gz": sum(gz(p.read_bytes()) for p in own),
        "shared": {p.relative_to(site).as_posix(): p.stat().st_size for p in shared},
        "shared_used": sum(p.stat().st_size for p in shared if p.relative_to(site).as_posix() in used),
        "shared_gz": sum(gz(p.read_bytes()) for p in shared if p.relative_to(site).as_posix() in used),
        "tokens": len(report["examples"][0]["tokens"]),
        "used": used,
        "outside": outside_sources(html),
    }


def browser_requests(path: Path) -> tuple[int, list[str]]:
    """Open `path` in Chromium from file://, block and count every request that leaves it."""
    from playwright.sync_api import sync_playwright

    outside = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium")
        page = browser.new_page()

        def route(r):
            if r.request.url.startswith(("file:", "data:", "blob:")):
                return r.continue_()
            outside.append(r.request.url)
            return r.abort()

        page.route("**/*", route)
        page.goto(path.as_uri())
        page.wait_for_timeout(1500)
        browser.close()
    return len(outside), sorted(set(outside))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=107, help="pick the demo text closest to this length")
    ap.add_argument("--long", type=int, default=512, help="the long input's length in tokens (0: skip)")
    ap.add_argument("--browser", action="store_true", help="also count outside requests in Chromium")
    ap.add_argument("--keep", type=Path, help="write the pages into this folder to look at them")
    args = ap.parse_args()
    try:
        from bertviz import head_view, model_view
    except ImportError:
        print("pip install bertviz (the baseline)")
        return 2
    import torch
    import transformers

    from attnreport.demo import demo_model
    from attnreport.export.demo_model import minilm_folder
    from attnreport.trace import Tracer
    from attnreport.trace.cache import default_cache_dir

    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(2)
    model_dir, _ = demo_model(default_cache_dir(), log=lambda m: None)
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    row = pick_text(hf_tok, args.tokens)
    work = args.keep or Path(tempfile.mkdtemp(prefix="attnreport-bench-site-"))
    work.mkdir(parents=True, exist_ok=True)

    # --- BertViz: transformers with output_attentions, and our traced attention ---
    start = time.perf_counter()
    hf = transformers.AutoModel.from_pretrained(str(minilm_folder()), attn_implementation="eager")
    hf.eval()
    enc = hf_tok(row["text"], return_tensors="pt")
    with torch.no_grad():
        out = hf(**enc, output_attentions=True)
    tokens = hf_tok.convert_ids_to_tokens(enc["input_ids"][0])
    n = len(tokens)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        bv_head = head_view(out.attentions, tokens, html_action="return").data
        t1 = time.perf_counter()
        bv_model = model_view(out.attentions, tokens, html_action="return").data
        t2 = time.perf_counter()
    trace = Tracer(model_dir, use_cache=False).trace_texts([row["text"]])[0]
    ours_attention = tuple(torch.from_numpy(trace.attentions[layer][None]) for layer in range(trace.layers))
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bv_model_traced = model_view(ours_attention, list(trace.tokens), html_action="return").data
    bertviz_total = time.perf_counter() - start
    (work / "bertviz-head_view.html").write_text(bv_head, encoding="utf-8")
    (work / "bertviz-model_view.html").write_text(bv_model, encoding="utf-8")

    # --- ours: the real pipeline for the same text, and for a 512-token one ---
    site, times = build_ours(model_dir, [row], work / "ours")
    ours = page_bytes(site)
    own = sum(ours["own"].values())

    b_head, b_model = len(bv_head.encode()), len(bv_model.encode())
    b_traced = len(bv_model_traced.encode())
    layers, heads = len(out.attentions), out.attentions[0].shape[1]
    print(
        f"input: {'demo texts joined' if row['id'].startswith('joined') else 'demo text ' + row['id']}, "
        f"{n} tokens (ours: {ours['tokens']}), "
        f"MiniLM {layers} layers x {heads} heads"
    )
    print()
    print("BertViz 1.4 (transformers, output_attentions=True)")
    print(f"  head_view HTML             {mb(b_head)}   gzip {mb(gz(bv_head.encode()))}   ({t1 - t0:.1f} s)")
    print(
        f"  model_view HTML            {mb(b_model)}   gzip {mb(gz(bv_model.encode()))}   ({t2 - t1:.1f} s)"
    )
    print(f"  model_view, our attention  {mb(b_traced)}   (the same numbers as our page)")
    print(f"  both views                 {mb(b_head + b_model)}")
    print()
    print("attnreport example page (heatmap, head view, model view, attributions, faithfulness, 3D flow)")
    for name, size in ours["own"].items():
        print(f"  {name:<34} {mb(size)}")
        if name.endswith(".html"):
            for part, part_size in ours["inside"].items():
                print(f"    {part:<32} {mb(part_size)}")
    print(f"  page total                 {mb(own)}   gzip {mb(ours['own_gz'])}")
    print(
        f"  shared assets, once per site, that this page loads: {mb(ours['shared_used'])}   "
        f"gzip {mb(ours['shared_gz'])}"
    )
    for name, size in ours["shared"].items():
        print(f"    {name:<32} {mb(size)}" + ("" if name in ours["used"] else "   (not loaded by this page)"))
    print()
    print(f"ratio, BertViz model_view / our page:                       {b_model / own:7.1f}x")
    print(f"ratio, BertViz head_view + model_view / our page:           {(b_head + b_model) / own:7.1f}x")
    print(
        "ratio, BertViz model_view / (our page + all shared assets): "
        f"{b_model / (own + ours['shared_used']):7.1f}x"
        "  (a one-page site)"
    )
    print(
        f"ratio, gzip, model_view / our page:                         "
        f"{gz(bv_model.encode()) / ours['own_gz']:7.1f}x"
    )
    print()
    print(
        f"our build, one text, fresh cache (trace, attributions, flow, scene, page): {times['cold']:.1f} s; "
        f"rebuild from the cache: {times['warm']:.1f} s, of which rendering the site {times['render']:.2f} s"
    )
    print(f"BertViz, load model + forward + both views: {bertviz_total:.1f} s")

    if args.long:
        text = long_text(hf_tok, args.long)
        long_site, long_times = build_ours(model_dir, [{"id": "long", "text": text}], work / "long")
        big = page_bytes(long_site)
        print()
        print(
            f"a {big['tokens']}-token input on our side: page {mb(sum(big['own'].values()))} "
            f"(gzip {mb(big['own_gz'])}), fresh-cache build {long_times['cold']:.1f} s, "
            f"rebuild {long_times['warm']:.1f} s (render {long_times['render']:.2f} s); "
            f"attributions score words or sentences past [analysis] max_attribution_tokens (the cold build "
            f"includes them), flow is skipped past 128 tokens"
        )
        per_weight = (sum(big["own"].values())) / (layers * heads * big["tokens"] ** 2)
        print(
            f"  ({per_weight:.2f} bytes per attention weight; BertViz writes "
            f"{b_model / (layers * heads * n * n):.1f} per weight)"
        )

    print()
    print("requests to outside the page")
    print("  BertViz head_view:  " + (", ".join(outside_sources(bv_head)) or "none"))
    print("  BertViz model_view: " + (", ".join(outside_sources(bv_model)) or "none"))
    print(
        "  attnreport page:    "
        + (", ".join(ours["outside"]) or "none (every script and style is in ../assets)")
    )
    if args.browser:
        for name, path in [
            ("BertViz model_view", work / "bertviz-model_view.html"),
            ("attnreport", ours["page"]),
        ]:
            count, urls = browser_requests(path)
            print(
                f"  Chromium, {name}: {count} outside request(s) blocked"
                + (f": {', '.join(urls)}" if urls else "")
            )
        print(
            "  (BertViz asks require.js for d3 and jQuery: with require.js blocked they are never asked for)"
        )
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"\npages kept in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
