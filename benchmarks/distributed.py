"""Tracing and per-example analysis in-process and on a Dask LocalCluster, side by side.

    python benchmarks/distributed.py [--synthetic 2000] [--work DIR]

Two datasets through the demo model (MiniLM fine-tuned by `attnreport demo`, made once into
the work folder): the demo's held-out tickets with the full per-example analysis (Shapley,
occlusion, flow, faithfulness), and N synthetic tickets traced only (no attributions), since
20,000 explained texts take hours on two cores. Each run is its own process with a fresh
cache, timing the executor's stream into the analysis stage (the site stage, the same code
either way, is left out): in-process with onnxruntime's default threads and with one thread,
then a LocalCluster with one and with two single-thread workers. Prints examples/s, the
scaling from one worker to two, the engine's overhead per example against the model's time
(one worker against one in-process thread), and the driver's peak RSS at N/4 and N texts.
Goals (issue 15): two workers >= 1.8x one; overhead < 5% of model time; driver memory flat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# this file's own name would shadow Dask's `distributed` package for everything it imports
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

_WORDS = (
    "my card was charged twice for the parcel that never arrived please refund it today where is "
    "order account locked password reset delivery late wrong item broken screen invoice bill price "
    "clinic appointment doctor pharmacy refill prescription insurance claim bank transfer failed"
)
VOCABULARY = _WORDS.split()


def synthetic(path: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            words = rng.choice(VOCABULARY, size=int(rng.integers(6, 40)))
            f.write(json.dumps({"id": f"s{i}", "text": " ".join(words)}) + "\n")
    return path


def one(spec: dict) -> dict:
    """One measured run (in its own process): the executor's traces through the analysis stage."""
    from attnreport.core.config import AnalysisConfig, DataConfig, ModelConfig, RunConfig
    from attnreport.run import open_executor
    from attnreport.run.stage import AnalysisStage
    from attnreport.trace import Tracer, read_rows

    cache = Path(spec["cache"])
    shutil.rmtree(cache, ignore_errors=True)
    analysis_options = AnalysisConfig(**spec["analysis"])
    start = time.perf_counter()
    tracer = Tracer(Path(spec["model"]), cache_dir=cache, threads=spec.get("threads"))
    analysis = AnalysisStage(tracer, analysis_options, cache)
    run = RunConfig(**spec["run"])
    executor = open_executor(run, analysis, ModelConfig(), cache, source=spec["data"], log=lambda m: None)
    ready = time.perf_counter()
    n = 0
    try:
        for _ in analysis.stream(executor.traces(read_rows(DataConfig(path=Path(spec["data"]))))):
            n += 1
        streamed = time.perf_counter()
        analysis.finish()
        finished = time.perf_counter()
        task_seconds = sum(r.seconds for r in getattr(executor, "reports", []))
    finally:
        executor.close()
    return {
        "examples": n,
        "startup": ready - start,
        "stream": streamed - ready,
        "finish": finished - streamed,
        "task_seconds": task_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(spec: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if out.returncode:
        sys.exit(f"run {spec['name']} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


RUNS = {
    "in-process": {"run": {}, "threads": None},
    "in-process, 1 thread": {"run": {}, "threads": 1},
    "dask, 1 worker x 1 thread": {"run": {"executor": "dask", "workers": 1, "threads_per_worker": 1}},
    "dask, 2 workers x 1 thread": {"run": {"executor": "dask", "workers": 2, "threads_per_worker": 1}},
}


def table(title: str, model: Path, data: Path, analysis: dict, work: Path, chunk: int) -> dict:
    print(f"\n{title}")
    print(f"{'run':<28} {'examples/s':>10} {'startup s':>9} {'stream s':>9} {'peak RSS MB':>11}")
    results = {}
    for name, how in RUNS.items():
        run = dict(how["run"], chunk_size=chunk) if how["run"] else {}
        spec = {
            "name": name,
            "model": str(model),
            "data": str(data),
            "cache": str(work / "cache-run"),
            "analysis": analysis,
            "run": run,
            "threads": how.get("threads"),
        }
        r = results[name] = measure(spec)
        rate = r["examples"] / r["stream"]
        print(f"{name:<28} {rate:>10.1f} {r['startup']:>9.1f} {r['stream']:>9.1f} {r['peak_rss_mb']:>11.0f}")
    one, two = results["dask, 1 worker x 1 thread"], results["dask, 2 workers x 1 thread"]
    local = results["in-process, 1 thread"]
    n = one["examples"]
    speedup = one["stream"] / two["stream"]
    overhead = (one["stream"] - local["stream"]) / n
    model = local["stream"] / n
    print(
        f"2 workers / 1 worker: {speedup:.2f}x (efficiency {speedup / 2:.0%}); engine overhead per "
        f"example {1000 * overhead:.2f} ms against {1000 * model:.2f} ms of model time "
        f"({overhead / model:.1%}); 1 worker's wall time beyond its tasks' "
        f"{1000 * (one['stream'] - one['task_seconds']) / n:.2f} ms per example"
    )
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", type=int, default=2000, help="synthetic texts (the issue's figure: 20000)")
    ap.add_argument("--chunk", type=int, default=32, help="[run] chunk_size")
    ap.add_argument("--demo-rows", type=int, default=16, help="held-out tickets explained (all: 63)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "attnreport-bench-dask")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(json.loads(args.one))))
        return 0

    from attnreport.demo import demo_model

    args.work.mkdir(parents=True, exist_ok=True)
    model, heldout = demo_model(args.work / "cache", log=lambda m: print(m, file=sys.stderr))
    print(f"{os.cpu_count()} cores; MiniLM demo model; chunks of {args.chunk} rows")
    lines = heldout.read_text(encoding="utf-8").splitlines(keepends=True)[: args.demo_rows]
    demo = args.work / "demo-heldout.jsonl"
    demo.write_text("".join(lines), encoding="utf-8")
    title = f"{len(lines)} demo held-out tickets, full per-example analysis"
    table(title, model, demo, {}, args.work, 2)
    tracing = {"attributions": [], "flow": False, "faithfulness": False}
    small = synthetic(args.work / "synthetic-quarter.jsonl", args.synthetic // 4)
    big = synthetic(args.work / "synthetic.jsonl", args.synthetic)
    results = table(
        f"{args.synthetic} synthetic tickets, traced only", model, big, tracing, args.work, args.chunk
    )
    quarter = measure(
        {
            "name": "quarter",
            "model": str(model),
            "data": str(small),
            "cache": str(args.work / "cache-run"),
            "analysis": tracing,
            "run": {"executor": "dask", "workers": 2, "chunk_size": args.chunk},
        }
    )
    print(
        f"driver peak RSS, 2 workers: {quarter['peak_rss_mb']:.0f} MB at {args.synthetic // 4} texts, "
        f"{results['dask, 2 workers x 1 thread']['peak_rss_mb']:.0f} MB at {args.synthetic}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
