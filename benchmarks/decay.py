"""How attention decays with token distance on a long input, per layer (a measurement, not a race).

    python benchmarks/decay.py [--tokens 510]

Joins demo tickets into one long text, traces it with the demo model (windows beyond the
model's positions), and prints the index's measure (`DistanceDecay`) for that one text: the
head-averaged attention at each distance bin relative to the uniform weight (1.0), per layer.
Keys outside a query's window are not pairs, so the bins stop at the window.
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=510, help="content tokens in the long text")
    args = ap.parse_args()
    from attnreport.analysis.aggregate import DistanceDecay
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
    decay = DistanceDecay(trace.layers, trace.n_tokens, causal=tracer.card.causal)
    decay.add(trace.attentions, trace.special)
    profile = decay.profile()
    print(
        f"{trace.n_tokens} tokens, {len(trace.windows) or 1} window(s); attention x keys seen (1.0 = uniform)"
    )
    print("layer " + " ".join(f"{f'{lo}-{hi}':>9s}" for lo, hi in profile["bins"]))
    for layer, row in enumerate(profile["relative_weight"]):
        print(f"{layer:5d} " + " ".join("        -" if c is None else f"{c:9.2f}" for c in row))
    print("pairs " + " ".join(f"{p:9d}" for p in profile["pairs"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
