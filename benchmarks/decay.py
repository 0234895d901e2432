"""How attention decays with token distance on a long input, per layer (a measurement, not a race).

    python benchmarks/decay.py [--tokens 510]

Joins demo tickets into one long text, traces it with the demo model (windows beyond the
model's 512 positions), and prints the mean head-averaged attention at distance bins,
relative to the uniform weight 1/n, per layer. Past the window size the weight is 0 by
construction (a query only sees its window), so the bins stop at the window.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=510, help="content tokens in the long text")
    args = ap.parse_args()
    from attnreport.analysis.aggregate import distance_profile
    from attnreport.demo import demo_model, demo_rows
    from attnreport.trace import Tracer
    from attnreport.trace.cache import default_cache_dir

    model_dir, _ = demo_model(default_cache_dir(), log=lambda m: None)
    tracer = Tracer(model_dir, use_cache=False)
    parts, count = [], 0
    for row in demo_rows():
        parts.append(row["text"])
        count += len(tracer.tokenizer.encode(row["text"]).ids)
        if count >= args.tokens:
            break
    (trace,) = tracer.trace_texts([" ".join(parts)])
    n = trace.n_tokens
    prof = distance_profile(trace.attentions, special=trace.special)
    edges = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 768, 1024]
    edges = [e for e in edges if e < n] + [n]
    print(f"{n} tokens, {len(trace.windows) or 1} window(s); mean attention x n (1.0 = uniform) by distance")
    print("layer " + " ".join(f"{f'{a}-{b - 1}':>9s}" for a, b in zip(edges, edges[1:], strict=False)))
    for layer, row in enumerate(prof):
        cells = [np.nanmean(row[a:b]) * n for a, b in zip(edges, edges[1:], strict=False)]
        print(f"{layer:5d} " + " ".join(f"{c:9.2f}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
