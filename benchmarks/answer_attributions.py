"""Answer attributions: ours (teacher-forced through onnxruntime) against Captum's LLMAttribution.

    python benchmarks/answer_attributions.py [--steps 1 8 32] [--samples 2 8 25]

The checkpoint is the toy causal LM (the demo's before SmolLM2) (`attnreport.demo_lm.demo_lm`: a
2-layer Qwen2, d = 128, trained on the bundled Q&A corpus; trained on first use and cached),
exported with `attnreport.export.export_model`. Three prompts of 8, 9 and 10 words, in its chat
template; each is answered greedily (end of sequence ignored) and the first T tokens of the
answer are explained, for T = 1, 8 and 32. Every method explains the same games: each answer
token's log-probability, over the prompt's words (`analysis.units`, ``"word"``), a word absent
when all its tokens are replaced by the padding token ``<|endoftext|>`` (the model has no mask
token; one baseline token per replaced token, so no position moves).

- ours: `trace.forced.ForcedAnswer` + `analysis.answer_attribution.explain_answer` (every
  answer token, the whole answer and the runner-up contrasts, on one run per coalition);
- Captum 0.9's ``LLMAttribution`` with ``FeatureAblation`` and ``ShapleyValueSampling``
  (PyTorch, the same checkpoint) on a ``TextTemplateInput`` whose values are the same words and
  whose baselines are the same padding tokens: the benchmark checks, for every coalition, that
  Captum's prompt tokenises to exactly our masked ids. Captum runs two ways:
  per step (``forward_in_tokens=True``, its default: one forward per answer token per coalition,
  so its runs grow with T) and teacher-forced (``forward_in_tokens=False``: one forward of
  prompt + answer per coalition, as ours). The per-step runs pass ``use_cached_outputs=False``:
  with its default cache on transformers 5 the scores of every token after the first are wrong
  (the benchmark measures and prints the difference) and no faster.

The reference is exact Shapley values over the words: all 2^p coalitions scored by PyTorch in
batches (prompt + answer, one forward each), summed by Shapley's formula. Error: relative L1
over the T x p matrix, sum |values - exact| / sum |exact|, averaged over the prompts.

Model runs are counted honestly: Captum's forward calls times their batch rows (a counting
wrapper on ``model.forward``), ours `ForcedAnswer.rows`; "positions" is the tokens those runs
processed. CPU time is this process's, all threads (on a shared machine read it rather than
wall time), the attribution call only, after a warm-up of both. The last table puts each of
Captum's configurations beside the cheapest of ours (in runs per token) whose error is no
larger, measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

#: the prompts explained (8, 9 and 10 words; each answered in training at 25+ words)
PROMPTS = (
    "I was charged twice for the same purchase.",
    "My blood pressure readings have been high all week.",
    "This is the third time my order has gone wrong.",
)


@dataclass
class Case:
    """One prompt's answer cut to T tokens, its word units and everything played on them."""

    trace: object
    members: list[np.ndarray]
    exact: np.ndarray  # [T, p]
    template: object = None  # Captum's TextTemplateInput
    #: max |log p| difference between onnxruntime's table and PyTorch's
    drift: float = 0.0

    @property
    def p(self) -> int:
        return len(self.members)


@dataclass
class Row:
    """One method at one T: what it cost and how far it was, per prompt."""

    name: str
    runs: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    coalitions: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)

    def add(self, values, case: Case, runs, positions, coalitions, cpu, wall) -> None:
        self.runs.append(runs)
        self.positions.append(positions)
        self.coalitions.append(coalitions)
        self.cpu.append(cpu)
        self.wall.append(wall)
        self.errors.append(float(np.abs(values - case.exact).sum() / np.abs(case.exact).sum()))

    def per_token(self, what: list, steps: int) -> float:
        return float(np.mean(what)) / steps

    @property
    def error(self) -> float:
        return float(np.mean(self.errors))


def masks_of(p: int) -> np.ndarray:
    """Every coalition of p players, ``[2^p, p]``: row r has player j iff bit j of r is set."""
    return ((np.arange(1 << p)[:, None] >> np.arange(p)) & 1).astype(bool)


def exact_from_table(table: np.ndarray, p: int) -> np.ndarray:
    """Shapley 1953 over a table of every coalition's values (``[2^p, T]``, rows as `masks_of`):
    phi_i = sum over S without i of |S|! (p - |S| - 1)! / p! (v(S + i) - v(S)). Returns [T, p]."""
    index = np.arange(1 << p)
    size = np.array([bin(r).count("1") for r in index])
    weight = np.array([math.factorial(s) * math.factorial(p - s - 1) / math.factorial(p) for s in range(p)])
    out = np.empty((table.shape[1], p))
    for i in range(p):
        without = index[(index >> i) & 1 == 0]
        out[:, i] = (weight[size[without]][:, None] * (table[without | (1 << i)] - table[without])).sum(
            axis=0
        )
    return out


def masked_ids(trace, members, masks: np.ndarray, baseline: int) -> np.ndarray:
    """The prompt's ids under each coalition (absent units' tokens replaced by `baseline`)."""
    rows = np.repeat(np.asarray(trace.prompt_ids, dtype=np.int64)[None], len(masks), axis=0)
    for j, unit in enumerate(members):
        rows[np.ix_(~masks[:, j], unit)] = baseline
    return rows


def torch_table(model, trace, prompt_rows: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Log-probability of each answer token after each prompt row (PyTorch, prompt + answer in
    one forward): ``[m, T]``."""
    import torch

    n, steps = trace.n_prompt, trace.steps
    answer = np.asarray(trace.ids, dtype=np.int64)
    out = []
    with torch.no_grad():
        for s in range(0, len(prompt_rows), chunk):
            rows = prompt_rows[s : s + chunk]
            ids = torch.tensor(np.concatenate([rows, np.repeat(answer[None, :-1], len(rows), 0)], axis=1))
            logits = model(input_ids=ids).logits[:, n - 1 : n - 1 + steps].double()
            logp = torch.log_softmax(logits, dim=-1).numpy()
            out.append(np.take_along_axis(logp, answer[None, :, None], axis=-1)[..., 0])
    return np.concatenate(out)


def captum_template(trace, members, tokenizer, baseline: str, baseline_id: int):
    """Captum's TextTemplateInput for the prompt: the chat template around one ``{}`` per word
    (the space before a word belongs to it, as in the tokens), baselines of as many padding tokens
    as the word has tokens. Checked: every coalition tokenises to our masked ids."""
    from captum.attr import TextTemplateInput

    text = trace.text
    offsets = np.asarray(trace.prompt_offsets)
    template, values, last = "", [], 0
    for unit in members:
        start = int(offsets[unit[0], 0])
        # the word's token starts with its space ("Ġwas"): the value does too
        while start > last and text[start - 1] == " ":
            start -= 1
        stop = int(offsets[unit[-1], 1])
        template += text[last:start].replace("{", "{{").replace("}", "}}") + "{}"
        values.append(text[start:stop])
        last = stop
    template += text[last:].replace("{", "{{").replace("}", "}}")
    inp = TextTemplateInput(template, values=values, baselines=[baseline * len(u) for u in members])
    import torch

    masks = masks_of(len(members))
    want = masked_ids(trace, members, masks, baseline_id)
    for mask, ids in zip(masks, want, strict=True):
        got = tokenizer.encode(inp.to_model_input(torch.tensor(mask[None].astype(np.int64))))
        if list(got) != ids.tolist():
            raise SystemExit(
                f"Captum's prompt for {mask.astype(int)} tokenises to {got}, ours {ids.tolist()}"
            )
    return inp


class Counter:
    """Wraps ``model.forward``: calls, batch rows and positions processed."""

    def __init__(self, model) -> None:
        self.inner = model.forward
        model.forward = self
        self.reset()

    def reset(self) -> None:
        self.calls = self.rows = self.positions = 0

    def __call__(self, *args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.calls += 1
        self.rows += int(ids.shape[0])
        self.positions += int(ids.shape[0] * ids.shape[1])
        return self.inner(*args, **kwargs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 8, 32], help="answer tokens explained")
    ap.add_argument(
        "--samples", type=int, nargs="+", default=[2, 8, 25], help="ShapleyValueSampling permutations"
    )
    ap.add_argument(
        "--kernel", type=int, nargs="+", default=[2, 4, 8, 16], help="our Kernel SHAP runs per unit"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        import captum
        import torch
        import transformers
        from captum.attr import FeatureAblation, LLMAttribution, ShapleyValueSampling
    except ImportError:
        print("pip install captum torch transformers (the baseline)")
        return 2

    from attnreport.analysis.answer_attribution import explain_answer
    from attnreport.analysis.generation import user_text
    from attnreport.analysis.units import attribution_units
    from attnreport.core.config import AnalysisConfig
    from attnreport.core.modelcard import is_exported
    from attnreport.demo_lm import demo_lm
    from attnreport.export import export_model
    from attnreport.trace import GenerationOptions, Generator
    from attnreport.trace.cache import default_cache_dir
    from attnreport.trace.forced import ForcedAnswer

    # one thread: on 2 shared cores PyTorch's second thread spin-waits (measured: 80 ms of CPU per
    # forward of this model with two threads, 2 ms with one), the best setting for Captum here;
    # onnxruntime keeps the session options attnreport ships
    torch.set_num_threads(1)
    transformers.utils.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    checkpoint, facts = demo_lm(default_cache_dir())
    export = checkpoint.parent / "export"
    if not is_exported(export):
        export_model(checkpoint, export)
    generator = Generator(export, use_cache=False)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint))
    model.eval()
    counter = Counter(model)
    longest = max(args.steps)
    print(
        f"demo LM ({facts['parameters']:,} parameters, {checkpoint.parent.name}); "
        f"captum {captum.__version__}, torch {torch.__version__} ({torch.get_num_threads()} thread)"
    )

    def cases_for(steps: int) -> list[Case]:
        out = []
        for trace in generator.generate_texts(
            list(PROMPTS), GenerationOptions(max_new_tokens=steps, eos=False, chat_template=True, lens=False)
        ):
            special = np.asarray(trace.special, dtype=bool) | np.asarray(trace.from_template, dtype=bool)
            units = attribution_units(user_text(trace), trace.prompt_offsets, special, "word")
            members = [np.asarray(m) for m in units.members]
            forced = ForcedAnswer(generator, trace, members)
            rows = masked_ids(trace, members, masks_of(len(members)), forced.baseline_id)
            table = torch_table(model, trace, rows)
            case = Case(trace, members, exact_from_table(table, len(members)))
            # the reference's table is ours too, through onnxruntime: the two runtimes agree
            ours = forced(masks_of(len(members))).chosen
            case.drift = float(np.abs(ours - table).max())
            case.template = captum_template(trace, members, tokenizer, forced.baseline, forced.baseline_id)
            out.append(case)
        return out

    def ours(config: AnalysisConfig, method: str = "shapley"):
        def run(case: Case):
            c, w = time.process_time(), time.perf_counter()
            forced = ForcedAnswer(generator, case.trace, case.members)
            result = explain_answer(forced, options=config, methods=(method,), random_state=args.seed)
            cpu, wall = time.process_time() - c, time.perf_counter() - w
            runs = forced.rows
            positions = runs * (case.trace.n_prompt + case.trace.steps - 1)
            return result.attributions[method].values, runs, positions, result.evaluations, cpu, wall

        return run

    def theirs(method, *, per_step: bool, **kwargs):
        def run(case: Case):
            attribution = LLMAttribution(method(model), tokenizer)
            target = torch.tensor(np.asarray(case.trace.ids, dtype=np.int64))
            torch.manual_seed(args.seed)
            counter.reset()
            c, w = time.process_time(), time.perf_counter()
            with contextlib.redirect_stderr(io.StringIO()):
                result = attribution.attribute(
                    case.template,
                    target=target,
                    forward_in_tokens=per_step,
                    use_cached_outputs=False,
                    **kwargs,
                )
            cpu, wall = time.process_time() - c, time.perf_counter() - w
            coalitions = counter.calls // (case.trace.steps if per_step else 1)
            values = result.token_attr.double().numpy()
            return values, counter.rows, counter.positions, coalitions, cpu, wall

        return run

    methods = [("ours exact (2^p)", ours(AnalysisConfig(max_exact=20, faithfulness=False)))]
    d = AnalysisConfig(faithfulness=False)
    methods.append(
        (
            f"ours default (exact to {d.max_exact}, then {d.shapley_method} {d.evaluations_per_token}p)",
            ours(d),
        )
    )
    for k in args.kernel:
        config = AnalysisConfig(
            max_exact=0, shapley_method="kernel", evaluations_per_token=k, faithfulness=False
        )
        methods.append((f"ours kernel {k}p", ours(config)))
    for k in args.samples:
        k2 = max(4, k + k % 2)  # antithetic pairs, at least two (`sampled_shapley`)
        config = AnalysisConfig(
            max_exact=0, shapley_method="permutation", permutations=k2, faithfulness=False
        )
        methods.append((f"ours permutations {k2}", ours(config)))
    methods.append(("ours occlusion", ours(d, "occlusion")))
    captum_rows = [("Captum FeatureAblation", FeatureAblation, {})] + [
        (f"Captum ShapleyValueSampling n={k}", ShapleyValueSampling, {"n_samples": k}) for k in args.samples
    ]
    for name, method, kwargs in captum_rows:
        methods.append((name + " per step", theirs(method, per_step=True, **kwargs)))
    for name, method, kwargs in captum_rows:
        methods.append((name + " forced", theirs(method, per_step=False, **kwargs)))

    # Captum's default cache, measured once: the answer's scores with and without it
    (first,) = cases_for(min(8, longest))[:1]
    ones = torch.ones(1, first.p, dtype=torch.long)
    probe = LLMAttribution(FeatureAblation(model), tokenizer)
    target = torch.tensor(np.asarray(first.trace.ids, dtype=np.int64))
    with torch.no_grad():
        scored = {
            cached: probe._forward_func_by_tokens(ones, first.template, target, use_cached_outputs=cached)[
                0, 1:
            ]
            for cached in (True, False)
        }
    logp = np.log(np.asarray(first.trace.probability))
    print(
        f"Captum use_cached_outputs=True (its default) on transformers {transformers.__version__}: "
        f"log p of the {first.trace.steps} answer tokens off by up to "
        f"{np.abs(scored[True].double().numpy() - logp).max():.3f} from the generation's own "
        f"(False: {np.abs(scored[False].double().numpy() - logp).max():.1e}); per-step rows run without it"
    )
    # warm-up: each library once, untimed
    for name, run in methods:
        if name.startswith(("ours occlusion", "Captum FeatureAblation")):
            run(first)

    tables: dict[int, list[Row]] = {}
    for steps in args.steps:
        cases = cases_for(steps)
        ps = [c.p for c in cases]
        drift = max(c.drift for c in cases)
        print(
            f"\nT = {steps} answer tokens; prompts of p = {ps} words; reference: exact over 2^p coalitions "
            f"(PyTorch; onnxruntime's table agrees to {drift:.1e})"
        )
        rows = []
        for name, run in methods:
            row = Row(name)
            for case in cases:
                values, runs, positions, coalitions, cpu, wall = run(case)
                row.add(values, case, runs, positions, coalitions, cpu, wall)
            rows.append(row)
        tables[steps] = rows
        print(
            f"  {'method':58s} {'coalitions':>10} {'runs':>7} {'runs/token':>10} {'positions/token':>15} "
            f"{'cpu ms/token':>12} {'wall ms/token':>13} {'rel L1 err':>10}"
        )
        for row in rows:
            print(
                f"  {row.name:58s} {np.mean(row.coalitions):10.0f} {np.mean(row.runs):7.0f} "
                f"{row.per_token(row.runs, steps):10.1f} {row.per_token(row.positions, steps):15.0f} "
                f"{1000 * row.per_token(row.cpu, steps):12.1f} {1000 * row.per_token(row.wall, steps):13.1f} "
                f"{row.error:10.4f}"
            )

    print("\nat equal error: each Captum configuration beside the cheapest of ours no less accurate")
    print(
        f"  {'T':>3} {'Captum':44s} {'err':>7} {'runs/tok':>8}   {'ours':44s} {'err':>7} {'runs/tok':>8} "
        f"{'runs ratio':>10} {'cpu ratio':>9}"
    )
    for steps, rows in tables.items():
        mine = [r for r in rows if r.name.startswith("ours") and "occlusion" not in r.name]
        for row in rows:
            if not row.name.startswith("Captum"):
                continue
            pool = mine if "Shapley" in row.name else [r for r in rows if r.name == "ours occlusion"]
            fit = [r for r in pool if r.error <= row.error + 1e-9]
            if not fit:
                print(f"  {steps:3d} {row.name:44s} {row.error:7.4f}   none of ours as close")
                continue
            best = min(fit, key=lambda r: np.mean(r.runs))
            ratio = np.mean(row.runs) / np.mean(best.runs)
            cpu_ratio = np.mean(row.cpu) / np.mean(best.cpu)
            print(
                f"  {steps:3d} {row.name:44s} {row.error:7.4f} {row.per_token(row.runs, steps):8.1f}   "
                f"{best.name[:44]:44s} {best.error:7.4f} {best.per_token(best.runs, steps):8.1f} "
                f"{ratio:9.1f}x {cpu_ratio:8.1f}x"
            )
    print(
        "\nFeatureAblation is occlusion: it is matched with ours (the same values), and its error is "
        "occlusion's distance from the Shapley values. ratio = Captum's / ours, per prompt, same run."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
