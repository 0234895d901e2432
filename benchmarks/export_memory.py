"""Export memory, time and folder size of random-weight Qwen2.5 checkpoints at their real sizes.

    python benchmarks/export_memory.py [--sizes 0.5b,1.5b] [--dtypes float32,float16] [--code PATH]
                                       [--quantize int4]

Builds, once per size in a temporary folder (or `--workdir`), a Qwen2.5 checkpoint with random
weights and the real config values (0.5B: hidden 896, 24 layers, 14 heads, 2 KV heads,
intermediate 4864; 1.5B: hidden 1536, 28 layers, 12 heads, 2 KV heads, intermediate 8960; both
vocabulary 151936, tied embeddings), saved as safetensors in bfloat16 as Qwen ships it, with a small
byte-level BPE tokenizer (ids far below the vocabulary; the export needs only a fast tokenizer).
Then each export runs as ``python -m attnreport.cli export`` in its own subprocess, with `--code`
(default: this repository) first on PYTHONPATH, so main's code and a branch's can be measured
with one harness.

Per export: wall time, the child's peak RSS (``os.wait4``'s ``ru_maxrss``; Linux counts the
parent's RSS at fork in it too, so the parent imports neither torch nor the package), its peak
anonymous and file-backed RSS sampled from ``/proc`` every 0.25 s (onnxruntime maps the weights from
the external-data file: file-backed pages, which the kernel can drop and read again), the export
folder's size and its external-data bytes, and peak RSS over the weights' bytes in the exported
dtype, against the goal of a peak at most `GOAL` times the weights. The checkpoint is built in a
subprocess too, so the parent stays small. bfloat16 is not an export dtype (onnxruntime's CPU
kernels and numpy lack it), so it is not measured.

``--quantize int4`` (or ``int8``) exports float32 with ``--quantize``: the row's dtype reads
``float32+int4``, its goal is still against the float32 weights (the export loads and checks them),
and the folder size is the int4 one; the export's drift figures (top-1 agreement, log-probability,
attention) are printed from its manifest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the goal of issue 24: peak RSS at export at most this many times the weights' bytes in the dtype
GOAL = 1.5
SIZES = {
    "0.5b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, intermediate_size=4864),
    "1.5b": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, intermediate_size=8960),
}
COMMON = dict(
    vocab_size=151936,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    use_sliding_window=False,
    bos_token_id=0,
    eos_token_id=0,
    pad_token_id=1,
)
BYTES = {"float32": 4, "float16": 2}
CORPUS = [
    "The card was charged twice for the same order.",
    "Refill please, and send the invoice to my office address.",
    "My blood pressure readings have been high all week, and the new tablets make me dizzy.",
    "Should I keep taking them until the appointment on Friday morning?",
] * 4


def build_checkpoint(size: str, folder: Path) -> None:
    """Write the random checkpoint of `size` and ``info.json`` (its parameter count) into `folder`.
    Runs in a subprocess (``--build``)."""
    import torch
    import transformers as T
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    torch.manual_seed(0)
    cfg = T.Qwen2Config(**SIZES[size], **COMMON)
    model = T.Qwen2ForCausalLM._from_config(cfg, dtype=torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())  # tied embeddings counted once
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        CORPUS,
        trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=["<|endoftext|>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    fast = T.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>")
    model.save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    (folder / "info.json").write_text(json.dumps({"parameters": params}))


def folder_bytes(folder: Path) -> tuple[int, int]:
    """All bytes of the files in `folder`, and those of its ONNX external-data files."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), sum(p.stat().st_size for p in files if p.suffix == ".data")


def _sample(pid: int, peaks: dict, done: threading.Event) -> None:
    """Track the largest anonymous and file-backed resident memory of `pid` (``/proc/PID/status``):
    the weights onnxruntime maps from the external-data file are file-backed, which the kernel
    can drop under pressure, while torch's tensors and onnxruntime's packed copies are anonymous."""
    while not done.wait(0.25):
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            return
        for line in lines:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                peaks[key] = max(peaks.get(key, 0), int(value.split()[0]) * 1024)


def run_export(code: Path, checkpoint: Path, out: Path, dtype: str, quantize: str | None = None) -> dict:
    """One export in a child process: its wall time, peak RSS (and peak anonymous and file-backed
    RSS, sampled) and exit status."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
    )
    command = [sys.executable, "-m", "attnreport.cli", "export", str(checkpoint), "-o", str(out)]
    command += ["--dtype", dtype] + (["--quantize", quantize] if quantize else [])
    start = time.perf_counter()
    peaks: dict[str, int] = {}
    done = threading.Event()
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(command, env=env, cwd=str(code), stderr=log, text=True)
        sampler = threading.Thread(target=_sample, args=(child.pid, peaks, done), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)  # reaped here, for its rusage: tell Popen
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        log.seek(0)
        text = log.read()
    return {
        "seconds": seconds,
        "peak_bytes": usage.ru_maxrss * 1024,
        "peak_anon_bytes": peaks.get("RssAnon", 0),
        "peak_file_bytes": peaks.get("RssFile", 0),
        "returncode": child.returncode,
        "log": text,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.5b,1.5b", help="comma-separated: " + ", ".join(SIZES))
    parser.add_argument("--dtypes", default="float32,float16", help="comma-separated: " + ", ".join(BYTES))
    parser.add_argument("--quantize", choices=["int4", "int8"], help="export float32 with --quantize")
    parser.add_argument("--code", type=Path, default=ROOT, help="attnreport source tree to measure")
    parser.add_argument("--workdir", type=Path, help="keep checkpoints here (default: a temporary folder)")
    parser.add_argument("--build", nargs=2, metavar=("SIZE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build:
        build_checkpoint(args.build[0], Path(args.build[1]))
        return 0
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    for name, known in (("size", sizes and set(sizes) <= set(SIZES)), ("dtype", set(dtypes) <= set(BYTES))):
        if not known:
            parser.error(f"unknown {name} in {args.sizes if name == 'size' else args.dtypes!r}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="export-memory-"))
    code = args.code.resolve()
    print(f"code: {code}; work folder: {work}; goal: peak <= {GOAL}x the weights' bytes", flush=True)
    rows = []
    try:
        for size in sizes:
            checkpoint = work / f"qwen2.5-{size}"
            if not (checkpoint / "info.json").is_file():
                print(f"building the random {size} checkpoint ...", flush=True)
                subprocess.run(
                    [sys.executable, __file__, "--build", size, str(checkpoint)], check=True, cwd=str(ROOT)
                )
            params = json.loads((checkpoint / "info.json").read_text())["parameters"]
            for dtype in ["float32"] if args.quantize else dtypes:
                label = f"{dtype}+{args.quantize}" if args.quantize else dtype
                out = work / f"export-{size}-{label}"
                shutil.rmtree(out, ignore_errors=True)
                print(f"exporting {size} in {label} ...", flush=True)
                got = run_export(code, checkpoint, out, dtype, args.quantize)
                total, data = folder_bytes(out) if got["returncode"] == 0 else (0, 0)
                if got["returncode"] == 0 and args.quantize:
                    tag = f"{args.quantize}:"  # the quantizer's steps, with the peak RSS so far
                    for line in got["log"].splitlines():
                        if tag in line:
                            print(f"  {line[line.index(tag) :]}", flush=True)
                    print("  " + _drift(out), flush=True)
                weights = params * BYTES[dtype]
                row = dict(size=size, dtype=label, parameters=params, weight_bytes=weights, **got)
                row.update(folder_bytes=total, data_bytes=data, ratio=got["peak_bytes"] / weights)
                rows.append(row)
                if got["returncode"] != 0:
                    tail = got["log"].strip().splitlines()[-3:]
                    print(f"  export failed ({got['returncode']}): " + " | ".join(tail), flush=True)
                print(_line(row), flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        f"{'size':>5} {'dtype':>8} {'weights':>9} {'time':>9} {'peak RSS':>9} {'peak/w':>7} "
        f"{'anon':>9} {'file':>9} {'folder':>9} {'.data':>9}  goal (peak RSS <= {GOAL}x weights)"
    )
    for row in rows:
        print(_line(row))
    return 0 if all(r["returncode"] == 0 for r in rows) else 1


def _drift(out: Path) -> str:
    """The quantized export's drift from float32, as its manifest records it."""
    q = json.loads((out / "attnreport.json").read_text())["quantized"]
    if "top1_agreement" not in q:
        return f"int8 drift: attention {q['max_attention_diff']:.4f}"
    return (
        f"int4 drift on {q['prompts']} prompts x {q['new_tokens']} steps: top-1 agreement "
        f"{q['top1_agreement']:.0%} (per step {q['top1_agree_per_step']}), log-prob diff max "
        f"{q['max_abs_logprob_diff']:.3f} mean {q['mean_logprob_diff']:+.3f}, attention "
        f"{q['max_attention_diff']:.4f} (model.onnx {q['model_max_attention_diff']:.4f}), "
        f"same greedy answer {q['same_greedy_answer']}/{q['prompts']}, decoding "
        f"{q['fp32_tokens_per_s']:.1f} -> {q['int4_tokens_per_s']:.1f} tokens/s, graphs "
        f"{q['fp32_graph_bytes'] / 1e6:,.0f} -> {q['int4_graph_bytes'] / 1e6:,.0f} MB"
    )


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def _line(row: dict) -> str:
    minutes, seconds = divmod(row["seconds"], 60)
    verdict = "met" if row["ratio"] <= GOAL else "not met"
    if row["returncode"] != 0:
        verdict = f"export failed (exit {row['returncode']})"
    return (
        f"{row['size']:>5} {row['dtype']:>8} {_gb(row['weight_bytes']):>9} "
        f"{int(minutes):>3}m{seconds:04.1f}s "
        f"{_gb(row['peak_bytes']):>9} {row['ratio']:>6.2f}x {_gb(row['peak_anon_bytes']):>9} "
        f"{_gb(row['peak_file_bytes']):>9} {_gb(row['folder_bytes']):>9} "
        f"{_gb(row['data_bytes']):>9}  {verdict}"
    )


if __name__ == "__main__":
    sys.exit(main())
