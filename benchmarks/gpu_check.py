"""The GPU path, checked in one short run: export, generate, compare with transformers, build.

    bash benchmarks/gpu_check.sh            # or: python benchmarks/gpu_check.py [--size 0.5b|tiny]

On a machine with an NVIDIA GPU, torch with CUDA and onnxruntime-gpu (``pip install
onnxruntime-gpu`` in place of ``onnxruntime``), it exports a random-weight Qwen2.5 config (the real
0.5B sizes by default; ``--size tiny`` for a quick run) in float16, generates greedily with
attnreport's `Generator` on onnxruntime's CUDA execution provider (`trace.sessions` picks it when
present), checks the tokens and every step's attention rows against transformers' eager `generate`
on the GPU, prints new tokens per second for both, and builds a generation report from the export.

Without a GPU it runs the same steps on the CPU in float32 and says which GPU parts it skipped,
so the script is kept honest on a machine without one. Exit status 0 only when every check passed.

Random weights make top-2 near-ties common over a 151,936-token vocabulary, so a token that
differs is accepted only where transformers' two top logits are within the dtype's tolerance, and
that prompt is compared no further (after it the two continue from different tokens).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from export_memory import SIZES  # noqa: E402

CHECK_SIZES = {
    **SIZES,
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256),
}
PROMPTS = ("The card was charged twice for the same order.", "Refill please, and send the invoice.")
#: attention rows and near-ties: absolute for float32, looser for float16 on the GPU
TOLERANCE = {"float32": 1e-4, "float16": 2e-2}


def build_checkpoint(size: str, folder: Path) -> None:
    """A random Qwen2.5 checkpoint at `size` (export_memory's builder, with the tiny size added)."""
    import export_memory

    export_memory.SIZES.setdefault(size, CHECK_SIZES[size])
    export_memory.build_checkpoint(size, folder)


def gpu_state() -> tuple[bool, str]:
    import onnxruntime as ort
    import torch

    cuda_torch = torch.cuda.is_available()
    cuda_ort = "CUDAExecutionProvider" in ort.get_available_providers()
    if cuda_torch and cuda_ort:
        return True, f"GPU: {torch.cuda.get_device_name(0)}; onnxruntime {ort.__version__} with CUDA"
    missing = [
        n for n, ok in (("torch CUDA", cuda_torch), ("onnxruntime CUDAExecutionProvider", cuda_ort)) if not ok
    ]
    return (
        False,
        f"no GPU path here (missing: {', '.join(missing)}): the GPU parts are skipped, the CPU runs them",
    )


def ours(export: Path, new: int) -> tuple[list[list[int]], list[np.ndarray], float, list[str]]:
    from attnreport.trace import GenerationOptions, Generator
    from attnreport.trace.sessions import default_providers

    gen = Generator(export, use_cache=False)
    options = GenerationOptions(max_new_tokens=new, eos=False, lens=False)
    gen.generate_texts(["warm up"], GenerationOptions(max_new_tokens=2, eos=False, lens=False))
    start = time.perf_counter()
    traces = gen.generate_texts(list(PROMPTS), options)
    elapsed = time.perf_counter() - start
    ids = [[int(i) for i in t.ids] for t in traces]
    return ids, [t.attentions for t in traces], sum(len(i) for i in ids) / elapsed, default_providers()


def theirs(checkpoint: Path, export: Path, new: int, dtype: str, device: str):
    """transformers' greedy tokens, each step's attention rows [L, H, keys] and last-position logits."""
    import torch
    import transformers

    from attnreport.trace.sessions import load_tokenizer

    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(checkpoint), attn_implementation="eager", dtype=getattr(torch, dtype)
    ).to(device)
    model.eval()
    model.generation_config = transformers.GenerationConfig()
    tok = load_tokenizer(export)
    config = transformers.GenerationConfig(
        do_sample=False,
        max_new_tokens=new,
        min_new_tokens=new,
        output_attentions=True,
        output_logits=True,
        return_dict_in_generate=True,
        pad_token_id=1,
        eos_token_id=None,
    )
    results, total, elapsed = [], 0, 0.0
    for prompt in PROMPTS:
        ids = torch.tensor([tok.encode(prompt).ids], device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - start
        tokens = out.sequences[0, ids.shape[1] :].tolist()
        total += len(tokens)
        rows = [
            torch.stack([layer[0, :, -1] for layer in step]).float().cpu().numpy() for step in out.attentions
        ]
        logits = [step[0].float().cpu().numpy() for step in out.logits]
        results.append((tokens, rows, logits))
    return results, total / elapsed


def compare(mine, attentions, reference, tolerance: float) -> tuple[bool, list[str]]:
    ok, lines = True, []
    for p, (got, rows, (want, want_rows, logits)) in enumerate(zip(mine, attentions, reference, strict=True)):
        worst, compared, note = 0.0, 0, "tokens identical"
        for t, (a, b) in enumerate(zip(got, want, strict=True)):
            keys = want_rows[t].shape[-1]
            worst = max(worst, float(np.max(np.abs(rows[:, :, t, :keys] - want_rows[t]))))
            compared += 1
            if a != b:
                top = np.sort(logits[t])[-2:]
                if top[1] - top[0] > tolerance * max(1.0, abs(float(top[1]))):
                    ok, note = False, f"token {t} differs ({a} vs {b}) and is no near-tie: FAIL"
                else:
                    note = f"token {t} differs at a near-tie ({top[1] - top[0]:.1e}); compared up to it"
                break
        good = worst <= tolerance
        ok &= good
        lines.append(
            f"  prompt {p}: {compared} steps, {note}; attention rows max diff {worst:.1e} "
            f"(limit {tolerance:.0e}) {'ok' if good else 'FAIL'}"
        )
    return ok, lines


def report(export: Path, work: Path) -> tuple[bool, str]:
    """A generation report built from the export by the CLI, as a user would."""
    config = work / "report.toml"
    prompts = work / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS), encoding="utf-8")
    config.write_text(
        f'title = "GPU check"\n[model]\npath = {json.dumps(str(export))}\n'
        f"[data]\npath = {json.dumps(str(prompts))}\n[generate]\nmax_new_tokens = 8\n",
        encoding="utf-8",
    )
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "attnreport.cli", "build", str(config), "-o", str(work / "site")],
        capture_output=True,
        text=True,
        check=False,
    )
    pages = len(list((work / "site" / "examples").glob("*.html"))) if out.returncode == 0 else 0
    ok = out.returncode == 0 and pages == len(PROMPTS)
    tail = (out.stderr.strip().splitlines() or [""])[-1]
    return (
        ok,
        f"report: exit {out.returncode}, {pages} prompt pages, {time.perf_counter() - start:.0f} s {tail}",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="0.5b", choices=sorted(CHECK_SIZES))
    parser.add_argument("--new", type=int, default=32, help="new tokens per prompt")
    parser.add_argument("--workdir", type=Path, help="keep the checkpoint and export here")
    args = parser.parse_args(argv)
    gpu, state = gpu_state()
    print(state, flush=True)
    dtype, device = ("float16", "cuda") if gpu else ("float32", "cpu")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    checkpoint, export = work / f"qwen2.5-{args.size}", work / f"export-{args.size}-{dtype}"
    if not (checkpoint / "config.json").exists():
        print(f"building the random {args.size} checkpoint ...", flush=True)
        build_checkpoint(args.size, checkpoint)
    if not (export / "manifest.json").exists():
        start = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "attnreport.cli",
                "export",
                str(checkpoint),
                "-o",
                str(export),
                "--dtype",
                dtype,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        print(f"export ({dtype}): exit {out.returncode}, {time.perf_counter() - start:.0f} s", flush=True)
        if out.returncode:
            print(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "export failed")
            return 1
    mine, attentions, our_speed, providers = ours(export, args.new)
    print(f"attnreport: {our_speed:.1f} new tokens/s on {', '.join(providers)}", flush=True)
    reference, their_speed = theirs(checkpoint, export, args.new, dtype, device)
    print(
        f"transformers eager on {device}: {their_speed:.1f} new tokens/s "
        f"(attnreport {our_speed / their_speed:.2f}x)",
        flush=True,
    )
    ok, lines = compare(mine, attentions, reference, TOLERANCE[dtype])
    print("\n".join(lines))
    built, line = report(export, work)
    print(line)
    if not gpu:
        print("skipped: the CUDA execution provider and float16 on the GPU (no GPU here)")
    print("PASS" if ok and built else "FAIL")
    return 0 if ok and built else 1


if __name__ == "__main__":
    sys.exit(main())
