"""The generation report's head atlas, counted: the README's table of head patterns on SmolLM2.

    attnreport demo -o site && python benchmarks/head_patterns.py site/generation [--group 5]

Reads a built generation report's ``report.json`` (`head_patterns`, made by
`attnreport.analysis.answer_heads`) and prints, per group of layers, how many heads show each
pattern, the totals, and how often the patterns come together. Runs no model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="a built generation report (its folder)")
    parser.add_argument("--group", type=int, default=5, help="layers per row (default 5)")
    args = parser.parse_args()
    report = json.loads((args.site / "report.json").read_text(encoding="utf-8"))
    hp = report.get("head_patterns")
    if hp is None:
        raise SystemExit(f"{args.site / 'report.json'} has no head_patterns: build it with this version")
    patterns, counts = hp["patterns"], hp["counts"]
    layers = len(counts[patterns[0]])
    print(f"{hp['measured_on']}; {len(hp['heads'])} heads")
    print("| layers | " + " | ".join(patterns) + " |")
    print("| --- " * (len(patterns) + 1) + "|")
    for start in range(0, layers, args.group):
        stop = min(start + args.group, layers)
        cells = [str(sum(counts[p][start:stop])) for p in patterns]
        print(f"| {start}-{stop - 1} | " + " | ".join(cells) + " |")
    print(f"| all {len(hp['heads'])} | " + " | ".join(str(hp["totals"][p]) for p in patterns) + " |")
    shown = [set(h["patterns"]) for h in hp["heads"]]
    print(f"no pattern: {sum(not s for s in shown)}; the sink alone: {sum(s == {'sink'} for s in shown)}")
    for i, a in enumerate(patterns):
        for b in patterns[i + 1 :]:
            both = sum({a, b} <= s for s in shown)
            if both:
                print(f"{a} and {b}: {both}")


if __name__ == "__main__":
    main()
