"""Rebuild times of the demo's classification report: cold, warm, and after a template change.

    python benchmarks/rebuild.py [--model-cache DIR] [--work DIR] [--uncached-scenes]

The demo's classification report (`attnreport.demo`'s config, without the generation report
inside it) over its 63 held-out texts, built four times into one site folder with a fresh cache
folder of its own (the demo's model comes from ``--model-cache``: made there, by fine-tuning, on
first use; traces, results and scenes go to the benchmark's own cache):

- cold: nothing cached, every text traced and explained, every scene drawn;
- warm: the same config again, everything from the cache;
- template-only: warm, with a user template folder whose ``base.html.j2`` differs, so every
  page is rendered again (and its scenes copied from the cache, not drawn);
- scenes off: warm with ``[site] scenes = false``, the floor a scene cache can reach;
- with ``--uncached-scenes``: warm with the scene cache turned off in that build (the scenes
  drawn again, as every rebuild did before the scene cache), for the figure the cache removes.

Each build runs in its own process (as a user's rebuild does, imports included): wall seconds,
the child's peak RSS (``os.wait4``), scenes drawn (cache entries written), the machine's load
average as it ended (the figures move with other jobs on a shared machine) and the ratio to the
cold build. The goal from issue 25: a template-only rebuild under 15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 15.0


def child(spec: dict) -> None:
    """One build, in this process: the demo's classification config with `spec`'s changes."""
    from attnreport.core.config import (
        AnalysisConfig,
        CompareConfig,
        DataConfig,
        ModelConfig,
        ReportConfig,
        SiteConfig,
    )
    from attnreport.demo import DEMO_PROBE, DEMO_TOKEN_GROUPS, TITLE, demo_model
    from attnreport.pipeline import build

    model_dir, data_path = demo_model(Path(spec["model_cache"]), log=lambda m: None)
    templates = Path(spec["templates"]) if spec.get("templates") else None
    # the demo's classification config (`demo.run_demo`), its cache folder the benchmark's own
    config = ReportConfig(
        title=TITLE,
        model=ModelConfig(path=model_dir),
        data=DataConfig(path=data_path, group_column="domain"),
        site=SiteConfig(theme="light", templates=templates, scenes=spec.get("scenes", True)),
        analysis=AnalysisConfig(critical_labels=["urgent"], token_groups=DEMO_TOKEN_GROUPS),
        compare=CompareConfig(quantized=True, name="int8 (dynamic quantization)"),
        probes=[DEMO_PROBE],
        cache_dir=Path(spec["cache"]),
    )
    config.validate()
    if spec.get("uncached_scenes"):  # the scene stage as it was before the scene cache
        from attnreport.scenes import stage

        def uncached(cls, ctx):
            site = ctx.config.site
            return cls(ctx.spool, site.theme, example_glb=site.example_glb)

        stage.SceneStage.for_build = classmethod(uncached)
    build(config, Path(spec["out"]), log=lambda m: None, progress=False)


def entries(cache: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (cache / "scenes").glob("*/*.scene")}


def run(name: str, spec: dict, code: Path) -> dict:
    cache = Path(spec["cache"])
    before = entries(cache)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{name}: the build failed (exit {process.returncode})")
    after = entries(cache)
    drawn = sum(1 for p, stamp in after.items() if before.get(p) != stamp)
    if spec.get("uncached_scenes"):
        drawn = "all"  # drawn without the cache: nothing written there to count
    return {"name": name, "seconds": seconds, "rss_mb": usage.ru_maxrss / 1024, "drawn": drawn}


def template_folder(folder: Path) -> Path:
    """A user template folder whose base template differs from the shipped one by a comment."""
    from attnreport.core.resources import bundled

    folder.mkdir(parents=True, exist_ok=True)
    base = (bundled("templates") / "base.html.j2").read_text(encoding="utf-8")
    changed = base.replace("</body>", "<!-- rebuilt by benchmarks/rebuild.py -->\n</body>", 1)
    assert changed != base, "base.html.j2 has no </body>"
    (folder / "base.html.j2").write_text(changed, encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--model-cache", type=Path, default=None, help="where the demo model is (made)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--uncached-scenes", action="store_true", help="also a warm build, scene cache off")
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from attnreport.trace.cache import default_cache_dir

    code = Path(__file__).resolve().parent.parent
    work = Path(args.work or tempfile.mkdtemp(prefix="attnreport-rebuild-"))
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(work / "site", ignore_errors=True)
    base = {
        "model_cache": str(args.model_cache or default_cache_dir()),
        "cache": str(cache),
        "out": str(work / "site"),
    }
    templates = template_folder(work / "templates")
    phases = [
        ("cold", base),
        ("warm", base),
        ("template-only", {**base, "templates": str(templates)}),
        ("warm, scenes off", {**base, "scenes": False}),
    ]
    if args.uncached_scenes:
        phases.append(("warm, scene cache off", {**base, "uncached_scenes": True}))
    print(f"demo classification report, {os.cpu_count()} cores", flush=True)
    print(f"{'build':<22} {'seconds':>8} {'x cold':>7} {'peak RSS MB':>12} {'scenes drawn':>13} {'load':>5}")
    runs = []
    for name, spec in phases:
        r = run(name, spec, code)
        runs.append(r)
        ratio = r["seconds"] / runs[0]["seconds"]
        row = f"{r['name']:<22} {r['seconds']:>8.1f} {ratio:>7.2f} {r['rss_mb']:>12.0f} {r['drawn']:>13}"
        print(f"{row} {os.getloadavg()[0]:>5.1f}", flush=True)
    template = runs[2]["seconds"]
    verdict = "met" if template < GOAL_SECONDS else "NOT met"
    print(f"goal (issue 25): template-only rebuild under {GOAL_SECONDS:.0f} s: {verdict} ({template:.1f} s)")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
