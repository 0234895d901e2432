"""Tracing throughput, measured side by side in one run on one batch.

    python benchmarks/run.py [--batch 32] [--tokens 128] [--repeats 3]

Prints sequences/s for: the bare onnxruntime forward (the baseline the trace path is
judged against), our trace path (tokenise, batch, run, slice into Traces), PyTorch eager
with output_attentions, the same two ONNX paths with the int8 export, and the machine's
bare sgemm rate as the ceiling. Needs torch and the demo extra (MiniLM weights).
Targets: trace path >= 0.9x the bare forward; int8 >= 1.5x fp32.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

WORDS = [
    "the",
    "bank",
    "card",
    "was",
    "charged",
    "twice",
    "for",
    "my",
    "order",
    "and",
    "the",
    "clinic",
    "said",
    "please",
    "call",
    "back",
    "today",
    "about",
    "your",
    "account",
    "payment",
    "refund",
    "delivery",
    "late",
    "doctor",
    "pharmacy",
    "tablets",
    "blood",
    "test",
    "results",
    "week",
    "month",
    "phone",
    "internet",
    "bill",
    "price",
    "service",
    "staff",
    "manager",
    "help",
    "urgent",
    "problem",
]


def timed(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = a.T.copy()
    seconds = timed(lambda: a @ b, repeats)
    return 2 * size**3 / seconds / 1e9


def make_texts(tokenizer, batch: int, tokens: int) -> list[str]:
    """Texts of exactly `tokens` tokens (special tokens included), all different."""
    rng = np.random.default_rng(0)
    texts = []
    while len(texts) < batch:
        words = list(rng.choice(WORDS, size=tokens - tokenizer.n_special))
        text = " ".join(words)
        if len(tokenizer.encode(text).ids) + tokenizer.n_special == tokens:
            texts.append(text)
    return texts


def model_gflop(layers: int, d: int, ffn: int, n: int) -> float:
    """Multiply-adds x2 of one sequence through the encoder (projections, FFN, attention)."""
    per_layer = 2 * n * (4 * d * d + 2 * d * ffn) + 2 * 2 * n * n * d
    return layers * per_layer / 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "attnreport-bench")
    args = ap.parse_args()

    import torch
    import transformers

    from attnreport.core.modelcard import is_exported
    from attnreport.export import export_model
    from attnreport.export.demo_model import minilm_folder
    from attnreport.trace import Tracer

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    folder = args.work / "minilm"
    if not is_exported(folder) or not (folder / "model.int8.onnx").is_file():
        print(f"exporting MiniLM to {folder} (once)...", file=sys.stderr)
        export_model(minilm_folder(), folder, task="feature-extraction", quantize="int8")
    cores = os.cpu_count()
    torch.set_num_threads(cores)

    fp32 = Tracer(folder, batch_size=args.batch, use_cache=False)
    int8 = Tracer(folder, batch_size=args.batch, use_cache=False, quantized=True)
    texts = make_texts(fp32.tokenizer, args.batch, args.tokens)
    ids = np.stack(
        [
            np.concatenate(
                [fp32.tokenizer.prefix_ids, fp32.tokenizer.encode(t).ids, fp32.tokenizer.suffix_ids]
            )
            for t in texts
        ]
    ).astype(np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}

    def bare(session):
        return lambda: session.run(None, feeds)

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model = transformers.AutoModel.from_pretrained(str(minilm_folder()), attn_implementation="eager")
        model.eval()

    def pytorch():
        with torch.no_grad():
            model(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(feeds["attention_mask"]),
                output_attentions=True,
                output_hidden_states=True,
            )

    r = args.repeats
    results = {
        "onnx fp32, bare forward": timed(bare(fp32.session), r),
        "onnx fp32, trace path": timed(lambda: fp32.trace_texts(texts), r),
        "pytorch eager, output_attentions": timed(pytorch, r),
        "onnx int8, bare forward": timed(bare(int8.session), r),
        "onnx int8, trace path": timed(lambda: int8.trace_texts(texts), r),
    }
    rate = {name: args.batch / seconds for name, seconds in results.items()}
    card = fp32.card
    gflop = model_gflop(card.layers, card.hidden_size, 4 * card.hidden_size, args.tokens)
    ceiling = sgemm_gflops()
    print(f"batch {args.batch} x {args.tokens} tokens, {cores} cores, MiniLM {card.layers} layers")
    for name, value in rate.items():
        print(f"  {name:34s} {value:8.1f} seq/s   {value * gflop:7.1f} GFLOP/s")
    print(f"  {'bare sgemm (numpy, 2048^2)':34s} {'':8s}         {ceiling:7.1f} GFLOP/s")
    print("ratios")
    fp32_trace, int8_trace = rate["onnx fp32, trace path"], rate["onnx int8, trace path"]
    checks = [
        ("trace path / bare forward (fp32)", fp32_trace / rate["onnx fp32, bare forward"], 0.9),
        ("trace path / bare forward (int8)", int8_trace / rate["onnx int8, bare forward"], 0.9),
        ("onnx fp32 trace / pytorch eager", fp32_trace / rate["pytorch eager, output_attentions"], None),
        ("int8 / fp32 (trace path)", int8_trace / fp32_trace, 1.5),
        ("onnx fp32 bare / sgemm ceiling", rate["onnx fp32, bare forward"] * gflop / ceiling, None),
    ]
    for name, value, target in checks:
        verdict = ""
        if target is not None:
            verdict = f"  (target >= {target:.1f}: {'met' if value >= target else 'MISSED'})"
        print(f"  {name:34s} {value:6.2f}x{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
