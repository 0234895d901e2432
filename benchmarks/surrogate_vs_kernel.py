"""Kernel SHAP against the LASSO surrogate (ContextCite's) at equal model runs: LDS and top-k drop.

    python benchmarks/surrogate_vs_kernel.py [--runs 32 64 128 256] [--players 20 50 100 200]
        [--model /tmp/surrogate-cache] [--model-runs 32 64 128]

The baseline is the ``kernel`` estimator (`analysis.shapley.kernel_shap`, paired, outer strata
enumerated); beside it ``lasso`` (`analysis.shapley.lasso_surrogate`) and ``permutation``
(antithetic orders with the runs ``auto`` gives them past 14 players), each asked for the same
number of runs. Kernel SHAP needs at least 2p + 10 runs (v(∅), v(N), every unit alone and every
unit left out, four pairs) and permutations 4(p − 1) + 2 (two antithetic pairs): below that they
spend their floor; the surrogate is then given as many runs as Kernel SHAP spent, so the two
always compare at equal runs (``asked``: the budget named; ``runs``: what each spent).

Scores, each measured the same way for every method:

- **LDS**, the linear datamodeling score (`analysis.lds`): Spearman correlation between the
  attributions' predicted and the actual values on held-out random half-ablations, the same
  ones for every method, none of them a coalition any method ran;
- **comp.**: ERASER's comprehensiveness (`analysis.faithfulness`, AOPC over the top 1, 5, 10, 20
  and 50% of units): the drop in value when the top-ranked units are removed;
- **err.** (synthetic games with pairwise interactions only, whose Shapley values are known in
  closed form: φ_i = w_i + Σ_j u_ij / 2): relative L1 distance to the exact Shapley values.

(a) Synthetic games of p units: a sparse, heavy-tailed linear part (10% of units with weights
of N(0, 2²), the rest N(0, 0.05²)) plus p/2 random pairwise interactions of N(0, 0.5²):
``pairwise`` is that sum (paired Kernel SHAP and antithetic permutations are exact on it: a
game of degree 2 is their best case); ``log-sigmoid`` adds p/4 random triple interactions of
N(0, 0.5²) and takes log σ(1 + sum), a log-probability's saturation.
Averaged over 3 seeds.

(b) With ``--model`` (a cache folder for `attnreport.demo.smollm2_export`): SmolLM2-135M-Instruct
answers a question about a 24-sentence document (units: sentences); the game is the whole
answer's log-probability, a sentence removed when its tokens are replaced by the padding token
(`trace.forced.ForcedAnswer`).

Ratios are lasso / kernel (LDS, comp.; higher is better) and kernel / lasso (err.; lower is
better), measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from attnreport.analysis.attribution_methods import VectorMemo
from attnreport.analysis.faithfulness import faithfulness
from attnreport.analysis.lds import heldout_ablations, linear_datamodeling_score
from attnreport.analysis.shapley import kernel_shap, lasso_surrogate, sampled_shapley

DOCUMENT = (
    "The Alder Street Library opened in 1962 in a former grain warehouse. "
    "Its reading room has forty desks and a long window facing the river. "
    "The building was renovated in 2015, when a lift and a ramp were added. "
    "Children's story hour takes place every Wednesday morning. "
    "The library lends books, films, board games and a small set of tools. "
    "Members may borrow up to twelve items at a time. "
    "Books are lent for three weeks and films for one week. "
    "Late returns cost ten cents per day, with a cap of five dollars. "
    "The library is open from nine in the morning on weekdays. "
    "On Saturdays the library closes at four o'clock in the afternoon. "
    "It is closed on Sundays and on public holidays. "
    "The local history collection is kept on the second floor. "
    "It holds maps, photographs and the town's newspapers since 1880. "
    "Visitors must ask a librarian before handling the oldest maps. "
    "Wireless internet is free, and the password changes every month. "
    "Four computers can be booked for one hour at the front desk. "
    "Printing costs fifteen cents per page in black and white. "
    "A book club meets on the first Thursday of every month. "
    "Volunteers help with the annual book sale in October. "
    "The sale raised nearly three thousand dollars last year. "
    "That money paid for new shelving in the children's corner. "
    "The head librarian, Maria Okafor, has worked there since 2008. "
    "Parking is available behind the building for two hours. "
    "Bicycles can be locked to the racks beside the main entrance. "
)
QUESTION = "At what time does the library close on Saturdays?"


def additive_game(p: int, seed: int, *, saturate: bool):
    """(value function, exact Shapley values or None) of a sparse linear + pairwise game."""
    rng = np.random.default_rng(seed)
    w = np.where(rng.random(p) < 0.1, rng.normal(0, 2.0, p), rng.normal(0, 0.05, p))
    pairs = rng.choice(p, size=(p // 2, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    u = rng.normal(0, 0.5, len(pairs))
    triples = rng.choice(p, size=(p // 4, 3))
    t = rng.normal(0, 0.5, len(triples))

    def raw(masks: np.ndarray) -> np.ndarray:
        z = masks.astype(np.float64)
        return z @ w + (z[:, pairs[:, 0]] * z[:, pairs[:, 1]]) @ u

    if saturate:

        def saturating(masks: np.ndarray) -> np.ndarray:
            z = masks.astype(np.float64)
            cubic = (z[:, triples[:, 0]] * z[:, triples[:, 1]] * z[:, triples[:, 2]]) @ t
            return -np.logaddexp(0.0, -(1.0 + raw(masks) + cubic))

        return saturating, None
    phi = w.copy()
    np.add.at(phi, pairs[:, 0], u / 2)
    np.add.at(phi, pairs[:, 1], u / 2)
    return raw, phi


def estimators():
    """name -> (value, p, runs) -> ShapleyResult, each asked for `runs` model runs."""

    def permutation(value, p, runs):
        perms = 2 * max(2, (runs - 2) // (2 * (p - 1)))  # as `shapley._auto` buys them
        return sampled_shapley(value, p, permutations=perms, random_state=0)

    return {
        "kernel": lambda value, p, runs: kernel_shap(value, p, budget=runs, random_state=0),
        "lasso": lambda value, p, runs: lasso_surrogate(value, p, runs=runs, random_state=0),
        "permutation": permutation,
    }


def score(memo: VectorMemo, p: int, runs: int, held: int, phi: np.ndarray | None, seed: int) -> dict:
    """Every method's scores on one game, the held-out ablations drawn after all have run. Below
    Kernel SHAP's floor the others get what it spent, and "lasso@asked" the runs asked for."""
    value = memo.column(0)
    results = {}
    asked = runs
    for name, estimate in estimators().items():
        t = time.process_time()
        r = estimate(value, p, runs)
        results[name] = (r, time.process_time() - t)
        if name == "kernel":
            runs = r.evaluations
    if runs > asked:
        t = time.process_time()
        r = lasso_surrogate(value, p, runs=asked, random_state=0)
        results["lasso@asked"] = (r, time.process_time() - t)
    seen = np.unpackbits(
        np.frombuffer(b"".join(memo.memo), dtype=np.uint8).reshape(len(memo.memo), -1), axis=1, count=p
    ).astype(bool)
    masks = heldout_ablations(p, held, random_state=seed, exclude=seen)
    actual = value(masks)
    out = {}
    for name, (r, cpu) in results.items():
        row = {
            "runs": r.evaluations,
            "lds": linear_datamodeling_score(r.values, masks, actual),
            "comp": faithfulness(value, r.values).comprehensiveness,
            "cpu": cpu,
        }
        if phi is not None:
            row["err"] = float(np.abs(r.values - phi).sum() / np.abs(phi).sum())
        out[name] = row
    return out


def table(rows: list[tuple], with_err: bool) -> None:
    head = f"{'game':<12} {'p':>4} {'asked':>5} {'method':<12} {'runs':>5} {'LDS':>6} {'comp.':>7}"
    print(head + (f" {'err.':>6}" if with_err else "") + "   ratio vs kernel")
    for game, p, runs, scores in rows:
        k = scores["kernel"]
        for name, s in scores.items():
            line = f"{game:<12} {p:>4} {runs:>5} {name:<12} {s['runs']:>5.0f}"
            line += f" {s['lds']:>6.3f} {s['comp']:>7.3f}"
            if with_err:
                line += f" {s['err']:>6.3f}"
            if name != "kernel":
                ratio = f"LDS x{s['lds'] / k['lds']:.2f}, comp. x{s['comp'] / k['comp']:.2f}"
                if with_err:
                    ratio += f", err. kernel/this x{k['err'] / s['err']:.2f}"
                line += f"   {ratio}"
            print(line)


def synthetic(players: list[int], budgets: list[int], held: int, seeds: int) -> None:
    print("(a) synthetic games, mean over seeds", list(range(seeds)))
    for saturate in (False, True):
        game = "log-sigmoid" if saturate else "pairwise"
        rows = []
        for p in players:
            for runs in budgets:
                per_seed = []
                for seed in range(seeds):
                    value, phi = additive_game(p, seed, saturate=saturate)
                    memo = VectorMemo(lambda m, value=value: value(m)[:, None], columns=1)
                    per_seed.append(score(memo, p, runs, held, phi, seed))
                mean = {
                    name: {key: float(np.mean([s[name][key] for s in per_seed])) for key in per_seed[0][name]}
                    for name in per_seed[0]
                    if all(name in s for s in per_seed)
                }
                rows.append((game, p, runs, mean))
        table(rows, with_err=not saturate)
        print()


def real(cache: str, budgets: list[int], held: int) -> None:
    from pathlib import Path

    from attnreport.analysis.generation import not_user, user_text
    from attnreport.analysis.units import attribution_units
    from attnreport.demo import smollm2_export
    from attnreport.trace import GenerationOptions, Generator
    from attnreport.trace.forced import ForcedAnswer

    export = smollm2_export(Path(cache))
    generator = Generator(export, use_cache=False)
    prompt = DOCUMENT + "\n\n" + QUESTION
    options = GenerationOptions(max_new_tokens=12, chat_template=True, lens=False)
    (trace,) = generator.generate_texts([prompt], options)
    units = attribution_units(user_text(trace), trace.prompt_offsets, not_user(trace), "sentence")
    model = ForcedAnswer(generator, trace, [np.asarray(m) for m in units.members])
    p = model.players
    print(
        f"(b) SmolLM2-135M-Instruct, {trace.n_prompt} prompt tokens, {p} sentence units; "
        f"answer ({trace.steps} tokens): {trace.answer!r}"
    )
    memo = VectorMemo(lambda masks: model(masks).chosen.sum(axis=1, keepdims=True), columns=1)
    t = time.perf_counter()
    rows = []
    for runs in budgets:
        rows.append(("smollm2", p, runs, score(memo, p, runs, held, None, 0)))
    table(rows, with_err=False)
    print(
        f"{model.rows} forced runs in {time.perf_counter() - t:.0f} s "
        f"({memo.evaluations} distinct coalitions, the held-out ones shared by every method)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--runs", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    ap.add_argument("--players", type=int, nargs="+", default=[20, 50, 100, 200])
    ap.add_argument("--held", type=int, default=200, help="held-out ablations for the LDS")
    ap.add_argument("--model-held", type=int, default=48, help="held-out ablations on the real model")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--model", help="cache folder for the SmolLM2 export (part (b); omit to skip)")
    ap.add_argument("--model-runs", type=int, nargs="+", default=[32, 64])
    args = ap.parse_args()
    if not args.skip_synthetic:
        synthetic(args.players, args.runs, args.held, args.seeds)
    if args.model:
        real(args.model, args.model_runs, args.model_held)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
