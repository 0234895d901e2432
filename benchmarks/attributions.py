"""Token attributions: ours against shap's Partition explainer, side by side on one ONNX model.

    python benchmarks/attributions.py [--examples 6] [--prefixes 24] [--reference 96]

Both explainers call the same onnxruntime session of the demo model (MiniLM fine-tuned for
ticket triage) and explain the same output: the probability of the predicted class, with
absent tokens replaced by [MASK] (shap's text masker uses the tokenizer's mask token and,
for it, does not collapse runs of masks). shap is warmed up on one text before timing.
Timing includes everything per example: tokenising, every model run, the numpy after.

- short texts (<= 12 content tokens: the demo's few, and the openings of longer ones): our
  exact Shapley values (all 2^p coalitions) are the reference; each method's relative L1
  error against them, its evaluations, its time.
- long texts (20-60 tokens): time, and agreement (relative L1 distance, Spearman) of shap and
  of each of our estimators with a high-budget Kernel SHAP reference (``--reference`` x p runs).

shapiq's Shapley estimators (`pip install shapiq`; a baseline, not a dependency) run in the same
tables at the budgets of ours (``--budgets``, runs per token: 8p and 16p), on the same value
function, their model runs counted as the rows they send to the model: KernelSHAP (plain,
paired, and with leverage-score sampling, which for Shapley regression draws every coalition
size equally often (Musco & Witter 2025): shapiq's KernelSHAP given uniform size weights, an
emulation, shapiq 1.4.1 has no class of that name), UnbiasedKernelSHAP, PermutationSamplingSV,
StratifiedSamplingSV, SVARM, ProxySPEX (needs lightgbm) and RegressionMSR when the installed
shapiq has it. The last table names, per game size and budget, the estimator closest to the
reference at equal runs.

Times are wall-clock and CPU (this process, all threads); on a shared machine read the CPU
column. Ratios are shap's time over ours. Needs the demo extra and `pip install shap`. The
demo classifier is fine-tuned and exported on first use (a few minutes on 2 cores), then cached.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import io
import sys
import time
import warnings

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=6, help="texts per length group")
    ap.add_argument(
        "--prefixes", type=int, default=24, help="openings of longer texts added to the short group"
    )
    ap.add_argument("--shap-evals", type=int, default=500)
    ap.add_argument("--reference", type=int, default=96, help="runs per token of the long-text reference")
    ap.add_argument(
        "--budgets", type=int, nargs="+", default=[8, 16], help="runs per token for the equal-runs comparison"
    )
    args = ap.parse_args()
    try:
        import shap
    except ImportError:
        print("pip install shap (the baseline)")
        return 2
    import transformers
    from scipy.stats import spearmanr

    from attnreport.analysis import softmax
    from attnreport.analysis.shapley import exact_shapley, kernel_shap, sampled_shapley, shapley
    from attnreport.core.config import AnalysisConfig
    from attnreport.demo import demo_model, demo_rows
    from attnreport.trace import Tracer
    from attnreport.trace.cache import default_cache_dir
    from attnreport.trace.evaluate import MaskedModel

    transformers.utils.logging.set_verbosity_error()
    model_dir, _ = demo_model(default_cache_dir(), log=lambda m: None)
    tracer = Tracer(model_dir, use_cache=False)
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    tok = tracer.tokenizer
    session = tracer.session
    rows_seen = [0]

    def predict(texts) -> np.ndarray:
        """shap's view of the model: strings in, class probabilities out, batched through ORT."""
        rows = [tok.prefix_ids + list(tok.encode(str(t)).ids) + tok.suffix_ids for t in texts]
        rows_seen[0] += len(rows)
        n = max(map(len, rows))
        ids = np.zeros((len(rows), n), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)], mask[i, : len(r)] = r, 1
        out = []
        for s in range(0, len(rows), 64):
            (logits,) = session.run(
                ["logits"], {"input_ids": ids[s : s + 64], "attention_mask": mask[s : s + 64]}
            )
            out.append(softmax(logits))
        return np.concatenate(out)

    defaults = AnalysisConfig()

    def ours(method: str, per_token: int | None = None):
        """One of our estimators as a function text -> (values, evaluations), model calls included."""

        def run(text: str):
            (trace,) = tracer.trace_texts([text])
            f = MaskedModel(tracer, trace)
            p = f.players
            if method == "default":
                r = shapley(
                    f,
                    p,
                    method=defaults.shapley_method,
                    max_exact=defaults.max_exact,
                    evaluations_per_player=defaults.evaluations_per_token,
                    permutations=defaults.permutations,
                )
            elif method == "kernel":
                r = kernel_shap(f, p, budget=per_token * p)
            elif method == "reference":  # its own random state: no draws shared with the others
                r = kernel_shap(f, p, budget=per_token * p, random_state=12345)
            elif method == "permutation":  # about (p - 1) runs per order: orders for per_token * p runs
                r = sampled_shapley(f, p, permutations=max(4, round(per_token * p / (p - 1))))
            elif method == "surrogate":
                r = shapley(f, p, method="surrogate", max_exact=0)
            else:
                r = exact_shapley(f, p)
            return r.values, r.evaluations, r.std_error

        return run

    try:
        import shapiq
    except ImportError:
        shapiq = None

    def shapiq_estimators(p: int) -> dict:
        """shapiq's Shapley-value approximators for a game of p players, by the name we print."""
        out = {
            "KernelSHAP": lambda: shapiq.KernelSHAP(p, random_state=0),
            "KernelSHAP paired": lambda: shapiq.KernelSHAP(p, pairing_trick=True, random_state=0),
            "KernelSHAP leverage": lambda: shapiq.KernelSHAP(
                p, pairing_trick=True, sampling_weights=np.ones(p + 1), random_state=0
            ),
            "UnbiasedKernelSHAP": lambda: shapiq.UnbiasedKernelSHAP(p, random_state=0),
            "PermutationSamplingSV": lambda: shapiq.PermutationSamplingSV(p, random_state=0),
            "StratifiedSamplingSV": lambda: shapiq.StratifiedSamplingSV(p, random_state=0),
            "SVARM": lambda: shapiq.SVARM(p, random_state=0),
        }
        # shapiq's module __getattr__ answers None for a name it lacks: ask for a class
        if callable(getattr(shapiq, "RegressionMSR", None)):
            out["RegressionMSR"] = lambda: shapiq.RegressionMSR(p, random_state=0)
        if importlib.util.find_spec("lightgbm") is not None:
            out["ProxySPEX"] = lambda: shapiq.ProxySPEX(n=p, index="SV", max_order=p, random_state=0)
        return out

    def theirs(name: str, per_token: int):
        """One of shapiq's estimators at ``per_token * p`` runs, on our value function."""

        def run(text: str):
            (trace,) = tracer.trace_texts([text])
            f = MaskedModel(tracer, trace)
            p = f.players
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                iv = shapiq_estimators(p)[name]().approximate(
                    per_token * p, lambda masks: f(np.atleast_2d(masks))
                )
            return np.asarray(iv.get_n_order_values(1), dtype=np.float64), f.rows, None

        return run

    explainer = shap.Explainer(predict, shap.maskers.Text(hf_tok), algorithm="partition")

    def shap_run(text: str):
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            rows_seen[0] = 0
            sv = explainer([text], max_evals=args.shap_evals, silent=True)
        (trace,) = tracer.trace_texts([text])
        values = np.asarray(sv.values[0])[:, int(np.argmax(trace.logits))]
        p = int((~trace.special).sum())
        # shap's masker adds the special tokens as features; compare the content ones
        if len(values) != p + tok.n_special:
            return None, rows_seen[0], None
        return values[len(tok.prefix_ids) : len(values) - len(tok.suffix_ids)], rows_seen[0], None

    def short_prefix(text: str) -> str | None:
        """The longest opening of ``text`` in whole words with 9-12 content tokens, if any."""
        words = text.split()
        for k in range(len(words), 0, -1):
            prefix = " ".join(words[:k])
            p = len(tok.encode(prefix).ids)
            if p <= 12:
                return prefix if p >= 9 else None
        return None

    def timed(fn, text):
        w, c = time.perf_counter(), time.process_time()
        values, evaluations, se = fn(text)
        return values, evaluations, se, time.perf_counter() - w, time.process_time() - c

    rows = demo_rows()
    short, long, prefixes = [], [], []
    for r in rows:
        p = len(tok.encode(r["text"]).ids)
        if p <= 12 and len(short) < args.examples:
            short.append(r["text"])
        elif 20 <= p <= 60 and len(long) < args.examples:
            long.append(r["text"])
        if p > 12 and len(prefixes) < args.prefixes:
            prefix = short_prefix(r["text"])
            if prefix is not None:
                prefixes.append(prefix)
    # the demo has only a few natural texts short enough to enumerate: the openings of longer
    # ones (whole words, 9-12 tokens) widen the set, so that no estimator is judged on six games
    short += prefixes
    shap_run(short[0])  # warm-up: shap builds its masker state on the first call
    d = defaults
    print(
        f"demo model, {len(rows)} texts; shap {shap.__version__} Partition, max_evals={args.shap_evals}; "
        f"our defaults: shapley_method={d.shapley_method!r}, "
        f"evaluations_per_token={d.evaluations_per_token}, max_exact={d.max_exact}"
    )
    methods = [
        ("shap Partition", shap_run),
        (f"ours default ({d.shapley_method}, {d.evaluations_per_token}p)", ours("default")),
        ("ours kernel 8p", ours("kernel", 8)),
        ("ours kernel 16p", ours("kernel", 16)),
        ("ours permutations ~8p", ours("permutation", 8)),
        ("ours permutations ~16p", ours("permutation", 16)),
        ("ours surrogate (2p+2)", ours("surrogate")),
    ]
    if shapiq is None:
        print("shapiq is not installed (pip install shapiq): its estimators are left out")
    else:
        names = list(shapiq_estimators(4))
        missing = [n for n in ("RegressionMSR", "ProxySPEX") if n not in names]
        print(
            f"shapiq {importlib.metadata.version('shapiq')}: {', '.join(names)}"
            + (f"; not available here: {', '.join(missing)}" if missing else "")
        )
        for k in args.budgets:
            methods += [(f"shapiq {name} {k}p", theirs(name, k)) for name in names]
    for k in args.budgets:
        if k not in (8, 16):
            methods += [
                (f"ours kernel {k}p", ours("kernel", k)),
                (f"ours permutations ~{k}p", ours("permutation", k)),
            ]
    header = f"  {'method':38s} {'evals':>6} {'wall s':>7} {'cpu s':>7} {'ratio wall':>10} {'ratio cpu':>9}"

    def table(texts, reference):
        """Prints one row per method; returns each method's relative L1 error per text."""
        results, errors = {}, {}
        for name, fn in methods:
            results[name] = [timed(fn, t) for t in texts]
        shap_wall = np.mean([r[3] for r in results["shap Partition"]])
        shap_cpu = np.mean([r[4] for r in results["shap Partition"]])
        extra = "  L1 err vs ref  spearman   SE/err"
        print(header + extra)
        for name, res in results.items():
            wall, cpu = np.mean([r[3] for r in res]), np.mean([r[4] for r in res])
            errs, rhos, calib = [], [], []
            for (values, _, se, *_), ref in zip(res, reference, strict=True):
                if values is None:
                    continue
                errs.append(np.abs(values - ref).sum() / np.abs(ref).sum())
                rhos.append(spearmanr(values, ref).statistic)
                if se is not None:
                    calib.append(np.sqrt(np.mean(se**2)) / np.sqrt(np.mean((values - ref) ** 2)))
            errors[name] = errs
            err = f"{np.mean(errs):.3f} (n={len(errs)})" if errs else "n/a (alignment)"
            rho = f"{np.mean(rhos):.3f}" if rhos else "n/a"
            cal = f"{np.median(calib):.2f}" if calib else "-"
            print(
                f"  {name:38s} {np.mean([r[1] for r in res]):6.0f} {wall:7.3f} {cpu:7.3f} "
                f"{shap_wall / wall:9.1f}x {shap_cpu / cpu:8.1f}x  {err:>14s} {rho:>9s} {cal:>8s}"
            )
        # what 10x shap's speed would leave us: its cpu time / 10, in our model runs
        runs = results["ours kernel 16p"]
        per_run = sum(r[4] for r in runs) / sum(r[1] for r in runs)
        p_mean = np.mean([len(tok.encode(t).ids) for t in texts])
        print(
            f"  10x faster than shap = {shap_cpu / 10:.3f} cpu s per example = {shap_cpu / 10 / per_run:.0f} "
            f"of our model runs ({1000 * per_run:.1f} cpu ms each, from the kernel 16p rows); "
            f"seeing every token alone and left out once takes 2p + 2 = {2 * p_mean + 2:.0f}"
        )
        return errors

    print(f"\nshort (<=12 tokens): {len(short)} texts, p = {[len(tok.encode(t).ids) for t in short]}")
    start = time.process_time()
    exact = [ours("exact")(t)[0] for t in short]
    mean_p = np.mean([len(tok.encode(t).ids) for t in short])
    print(
        f"  reference: exact enumeration, mean 2^p = {np.mean([2 ** len(v) for v in exact]):.0f} runs, "
        f"{(time.process_time() - start) / len(short):.2f} cpu s/example (mean p = {mean_p:.1f})"
    )
    short_errors = table(short, exact)

    print(f"\nlong (20-60 tokens): {len(long)} texts, p = {[len(tok.encode(t).ids) for t in long]}")
    start = time.process_time()
    runs = [ours("reference", args.reference)(t) for t in long]
    reference = [values for values, _, _ in runs]
    seconds = (time.process_time() - start) / len(long)
    # the reference's own expected relative L1 error, E|N(0, se²)| = se·sqrt(2/π): a floor
    floor = np.mean([se.sum() * np.sqrt(2 / np.pi) / np.abs(v).sum() for v, _, se in runs])
    print(
        f"  reference: ours kernel {args.reference}p, {seconds:.1f} cpu s/example; its own expected "
        f"L1 err (from its standard errors) {floor:.3f}: distances below are inflated by about that"
    )
    long_errors = table(long, reference)
    print(
        "\nratio: shap's time / ours per example; L1 err: sum |values - ref| / sum |ref|; "
        "SE/err: reported standard error over actual RMS error (1 = calibrated)"
    )
    closest_at_equal_runs(
        short, short_errors, long, long_errors, [len(tok.encode(t).ids) for t in short + long]
    )
    return 0


def closest_at_equal_runs(short, short_errors, long, long_errors, sizes) -> None:
    """Per game size and budget, the estimator (ours or shapiq's) closest to the reference."""
    groups = {}
    for i, p in enumerate(sizes[: len(short)]):
        groups.setdefault(f"p = {p} (exact ref)", []).append(("short", i))
    bands = ((20, 29), (30, 39), (40, 60))
    for i, p in enumerate(sizes[len(short) :]):
        lo, hi = next(b for b in bands if b[0] <= p <= b[1])
        groups.setdefault(f"p = {lo}-{hi} (96p ref)", []).append(("long", i))
    errors = {"short": short_errors, "long": long_errors}
    budgets = sorted({int(n.rsplit(" ", 1)[1].strip("~p")) for n in short_errors if n.startswith("shapiq")})
    print("\nclosest at equal runs (mean relative L1 error per game size; runs per token = budget)")
    for k in budgets:
        for label, members in sorted(groups.items(), key=lambda g: g[0]):
            ranked = []
            for name in short_errors:
                tag = name.rsplit(" ", 1)[1]
                if tag not in (f"{k}p", f"~{k}p") or not name.startswith(
                    ("ours kernel", "ours perm", "shapiq")
                ):
                    continue
                errs = [errors[kind][name][i] for kind, i in members if errors[kind].get(name)]
                if len(errs) == len(members):
                    ranked.append((float(np.mean(errs)), name))
            ranked.sort()
            ours_best = next((e, n) for e, n in ranked if n.startswith("ours"))
            theirs_best = next(((e, n) for e, n in ranked if n.startswith("shapiq")), (float("nan"), "-"))
            print(
                f"  {k:2d}p  {label:20s} n={len(members):2d}  "
                f"closest: {ranked[0][1]:34s} {ranked[0][0]:.3f}   "
                f"best ours {ours_best[0]:.3f} ({ours_best[1].removeprefix('ours ')}), "
                f"best shapiq {theirs_best[0]:.3f} ({theirs_best[1].removeprefix('shapiq ')})"
            )


if __name__ == "__main__":
    sys.exit(main())
