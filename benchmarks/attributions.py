"""Token attributions: ours against shap's Partition explainer, side by side on one ONNX model.

    python benchmarks/attributions.py [--examples 6]

Both explainers call the same onnxruntime session of the demo model (MiniLM fine-tuned for
ticket triage) and explain the same output: the probability of the predicted class, with
absent tokens replaced by [MASK]. For short texts (<= 12 content tokens) our exact Shapley
values are the reference; the error of shap's values and of our sampled estimator (at a
budget comparable to shap's 500 evaluations) is measured against them. For longer texts
only time is compared. Needs the demo extra (and `pip install shap` for the baseline).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=6, help="texts per length group")
    ap.add_argument("--shap-evals", type=int, default=500)
    args = ap.parse_args()
    try:
        import shap
    except ImportError:
        print("pip install shap (the baseline)")
        return 2
    import transformers

    from attnreport.analysis import softmax
    from attnreport.analysis.shapley import exact_shapley, sampled_shapley
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

    def predict(texts) -> np.ndarray:
        """shap's view of the model: strings in, class probabilities out, batched through ORT."""
        rows = [tok.prefix_ids + list(tok.encode(str(t)).ids) + tok.suffix_ids for t in texts]
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

    rows = demo_rows()
    by_len: dict[str, list[str]] = {"short (<=12 tokens)": [], "long (18-24 tokens)": []}
    for r in rows:
        p = len(tok.encode(r["text"]).ids)
        if p <= 12 and len(by_len["short (<=12 tokens)"]) < args.examples:
            by_len["short (<=12 tokens)"].append(r["text"])
        elif 18 <= p <= 24 and len(by_len["long (18-24 tokens)"]) < args.examples:
            by_len["long (18-24 tokens)"].append(r["text"])
    masker = shap.maskers.Text(hf_tok)
    explainer = shap.Explainer(predict, masker, algorithm="partition")
    print(f"demo model, {len(rows)} texts; shap {shap.__version__} Partition, max_evals={args.shap_evals}")
    for group, texts in by_len.items():
        t_ours, t_sampled, t_shap, e_sampled, e_shap, evals_sampled = [], [], [], [], [], []
        for text in texts:
            (trace,) = tracer.trace_texts([text])
            f = MaskedModel(tracer, trace)
            players = f.players
            target = f.declaration.target_index
            start = time.perf_counter()
            exact = exact_shapley(f, players).values if players <= 12 else None
            t_ours.append(time.perf_counter() - start if exact is not None else np.nan)
            start = time.perf_counter()
            sampled = sampled_shapley(f, players, permutations=2 * max(2, args.shap_evals // (2 * players)))
            t_sampled.append(time.perf_counter() - start)
            evals_sampled.append(sampled.evaluations)
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                sv = explainer([text], max_evals=args.shap_evals, silent=True)
                t_shap.append(time.perf_counter() - start)
            shap_values = np.asarray(sv.values[0])[:, target]
            shap_tokens = len(shap_values)
            if exact is not None:
                scale = np.abs(exact).sum()
                e_sampled.append(np.abs(sampled.values - exact).sum() / scale)
                # shap's text masker adds the special tokens as features; compare the content ones
                if shap_tokens == players + tok.n_special:
                    content = shap_values[len(tok.prefix_ids) : shap_tokens - len(tok.suffix_ids)]
                    e_shap.append(np.abs(content - exact).sum() / scale)
        print(f"\n{group}: {len(texts)} texts")
        if not np.all(np.isnan(t_ours)):
            print(f"  ours exact (2^p evaluations)          {np.nanmean(t_ours):7.3f} s/example")
        print(
            f"  ours sampled ({int(np.mean(evals_sampled))} evaluations) {np.mean(t_sampled):12.3f} s/example"
        )
        print(f"  shap Partition ({args.shap_evals} evaluations)     {np.mean(t_shap):7.3f} s/example")
        print(f"  time ratio shap / ours sampled        {np.mean(t_shap) / np.mean(t_sampled):7.1f}x")
        if e_sampled:
            print(f"  L1 error vs exact, relative: ours sampled {np.mean(e_sampled):.3f}", end="")
            print(f", shap {np.mean(e_shap):.3f}" if e_shap else ", shap: token alignment differs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
