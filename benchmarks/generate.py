"""Generation with attentions: attnreport's KV-cache decoder in onnxruntime against transformers.

    python benchmarks/generate.py [--lengths 128 512 2048] [--long 4096] [--new 32] [--pages 128 512]

Builds (once, in a temporary folder) a random 4-layer Llama (d = 256, 8 heads, 4 kv heads:
grouped-query attention, rotary positions; vocabulary 2048, 4,200 positions) with a word-level
tokenizer, so a prompt of n words is n tokens, and exports it. (Not Qwen2: transformers 5 loads
a qwen2 checkpoint's tokenizer as its BPE Qwen2Tokenizer, which drops a word-level model.)
Then, each configuration in a fresh subprocess (so its peak RSS is its own, read from
/proc/self/status), greedily generates `--new` tokens after an n-token prompt:

- baseline: transformers ``generate(do_sample=False, output_attentions=True,
  return_dict_in_generate=True)``, eager attention, PyTorch on the same threads;
- attnreport: `Generator` with the default options (prompt n x n kept up to 512 tokens), the
  logit lens off (the baseline computes none) and on.

Prints new tokens/s (prefill included), the loaded process's RSS, the peak RSS during the
generation and its growth over the loaded process, and the ratios to the baseline measured in the
same run. Targets: at least the baseline's speed at every
length; memory growing linearly with the prompt (the long prompt keeps attention rows, not n x n).

Then page bytes (`--pages`): for a prompt of n words, the generation page our build writes (its
HTML with the page's data inlined; the shared scripts and styles counted once per site, apart)
against what BertViz (`pip install bertviz`, a baseline, not a dependency) writes for the same
tokens: `head_view` and `model_view` of transformers' eager attentions over the prompt and the
answer (every position our rows cover), each a self-contained HTML page. Raw and gzipped bytes,
and the ratios. BertViz carries every position's n x n rows; ours the answer's rows (quantised to
8 bits) plus scores, alternatives and the logit lens: the table says what each holds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOCAB = 2048
POSITIONS = 4200
SPECIALS = ["<eos>", "<pad>", "<unk>"]


def build(folder: Path) -> Path:
    """The benchmark checkpoint and its attnreport export (reused if already there)."""
    import torch
    import transformers as T
    from tokenizers import Tokenizer, models, pre_tokenizers

    from attnreport.export import export_model

    export = folder / "export"
    if (export / "attnreport.json").is_file():
        return export
    torch.manual_seed(0)
    cfg = T.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        intermediate_size=688,
        max_position_embeddings=POSITIONS,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=1,
    )
    model = T.LlamaForCausalLM(cfg)
    words = SPECIALS + [f"w{i}" for i in range(VOCAB - len(SPECIALS))]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = T.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    checkpoint = folder / "checkpoint"
    model.save_pretrained(str(checkpoint))
    fast.save_pretrained(str(checkpoint))
    export_model(checkpoint, export, log=lambda m: print("  export:", m, file=sys.stderr))
    return export


def prompt_of(n: int) -> str:
    import numpy as np

    rng = np.random.default_rng(n)
    return " ".join(f"w{i}" for i in rng.integers(0, VOCAB - len(SPECIALS), n))


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def rss_mb() -> float:
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; getrusage's ru_maxrss would count the parent's image,
    which Linux carries across fork + exec)."""
    return _status_mb("VmHWM")


def reset_peak() -> None:
    """Start a new peak from the current RSS (Linux >= 4.0: ``5 > /proc/self/clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5")


def run_one(kind: str, folder: Path, n: int, new: int) -> dict:
    """One configuration, in this (fresh) process: load, warm up on a short prompt, measure."""
    warnings.simplefilter("ignore")
    prompt = prompt_of(n)
    if kind == "transformers":
        import torch
        import transformers

        torch.set_num_threads(os.cpu_count() or 1)
        checkpoint = folder.parent / "checkpoint"
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(checkpoint), attn_implementation="eager"
        )
        model.eval()
        tok = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
        config = transformers.GenerationConfig(
            do_sample=False,
            max_new_tokens=new,
            min_new_tokens=new,
            output_attentions=True,
            return_dict_in_generate=True,
            pad_token_id=1,
            eos_token_id=0,
        )

        def call(text):
            ids = tok(text, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
                )
            return out.sequences.shape[1] - ids.shape[1]

    else:
        from attnreport.trace import GenerationOptions, Generator

        gen = Generator(folder, use_cache=False)
        options = GenerationOptions(max_new_tokens=new, eos=False, lens=kind == "attnreport+lens")

        def call(text):
            (trace,) = gen.generate_texts([text], options)
            return trace.steps

    call(prompt_of(8))
    loaded = rss_mb()
    reset_peak()
    start = time.perf_counter()
    steps = call(prompt)
    elapsed = time.perf_counter() - start
    return {
        "tokens_per_s": steps / elapsed,
        "seconds": elapsed,
        "peak_mb": peak_rss_mb(),
        "loaded_mb": loaded,
    }


def measure(kind: str, folder: Path, n: int, new: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", kind, str(folder), str(n), str(new)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def gz(data: bytes) -> int:
    import gzip

    return len(gzip.compress(data, compresslevel=9))


def our_page(folder: Path, n: int, new: int, work: Path) -> tuple[bytes, int, list[int]]:
    """The generation page our build writes for an n-word prompt, the bytes of its site's shared
    assets, and the token ids of the prompt and answer (what BertViz is then given)."""
    from attnreport.core.config import DataConfig, GenerateConfig, ModelConfig, ReportConfig
    from attnreport.pipeline import build

    config = ReportConfig(
        title="page bytes",
        model=ModelConfig(path=folder),
        data=DataConfig(prompts=[prompt_of(n)]),
        generate=GenerateConfig(enabled=True, max_new_tokens=new),
        cache_dir=work / "cache",
    )
    config.validate()
    site = build(config, work / f"site-{n}", log=lambda m: None, progress=False).site
    (page,) = sorted((site / "examples").glob("*.html"))
    assets = sum(f.stat().st_size for f in (site / "assets").iterdir())
    report = json.loads((site / "report.json").read_text(encoding="utf-8"))
    generation = report["examples"][0]["generation"]
    return page.read_bytes(), assets, generation["prompt_ids"] + generation["ids"]


def bertviz_pages(folder: Path, ids: list[int]) -> dict[str, bytes]:
    """BertViz's head view and model view of transformers' eager attentions over `ids` but the
    last (the positions whose rows our page holds)."""
    import contextlib
    import io

    import torch
    import transformers
    from bertviz import head_view, model_view

    checkpoint = folder.parent / "checkpoint"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), attn_implementation="eager")
    model.eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    seen = torch.tensor([ids[:-1]])
    with torch.no_grad():
        attentions = model(input_ids=seen, output_attentions=True).attentions
    tokens = tok.convert_ids_to_tokens(ids[:-1])
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "head_view": head_view(attentions, tokens, html_action="return").data.encode(),
            "model_view": model_view(attentions, tokens, html_action="return").data.encode(),
        }


def page_bytes(folder: Path, lengths: list[int], new: int) -> None:
    try:
        import bertviz  # noqa: F401
    except ImportError:
        print("page bytes: pip install bertviz (the baseline) to compare")
        return
    print()
    print("page bytes for one prompt and its answer (MB; gz: gzip -9)")
    print(f"{'prompt':>6}{'tokens':>8}  {'page':<22}{'raw':>8}{'gz':>8}{'raw x ours':>12}{'gz x ours':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in lengths:
            ours, assets, ids = our_page(folder, n, new, Path(tmp))
            theirs = bertviz_pages(folder, ids)
            rows = [("attnreport generation", ours)] + [(f"BertViz {k}", v) for k, v in theirs.items()]
            for name, data in rows:
                print(
                    f"{n:>6}{len(ids) - 1:>8}  {name:<22}{len(data) / 1e6:>8.2f}{gz(data) / 1e6:>8.2f}"
                    f"{len(data) / len(ours):>12.1f}{gz(data) / gz(ours):>11.1f}",
                    flush=True,
                )
        print(
            f"(ours also ships {assets / 1e6:.2f} MB of scripts and styles once per site, shared by"
            " every page; BertViz's pages load require.js, d3 and jQuery from cdnjs: they need the internet)"
        )
        print(
            "holds: ours, the answer's rows of every layer and head (8-bit) and rollout rows, scores,"
            " alternatives, logit lens; BertViz, every position's rows of every layer and head (float text)."
            " A random model's near-uniform rows deflate far better than a trained model's peaked ones."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--long", type=int, default=4096, help="the bounded-memory prompt (0: skip)")
    parser.add_argument("--new", type=int, default=32)
    parser.add_argument("--folder", type=Path, default=None, help="keep the model here between runs")
    parser.add_argument(
        "--pages", type=int, nargs="*", default=[128, 512], help="prompt lengths for page bytes"
    )
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)  # kind folder n new: one subprocess
    args = parser.parse_args()
    if args.one:
        kind, folder, n, new = args.one
        print(json.dumps(run_one(kind, Path(folder), int(n), int(new))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(args.folder or Path(tmp))
        kinds = ["transformers", "attnreport", "attnreport+lens"]
        model = "4-layer Llama d=256, 8 heads / 4 kv heads"
        print(f"{os.cpu_count()} cores; {model}; {args.new} new tokens, batch 1")
        head = f"{'prompt':>6}  {'kind':<16}{'tokens/s':>9}{'x base':>8}{'RSS MB':>8}{'peak MB':>9}"
        head += f"{'+MB':>7}{'s':>7}"
        print(head)
        lengths = list(args.lengths) + ([args.long] if args.long else [])
        for n in lengths:
            base = None
            for kind in kinds:
                r = measure(kind, folder, n, args.new)
                if "error" in r:
                    print(f"{n:>6}  {kind:<16}  failed: {r['error']}")
                    continue
                base = r if kind == "transformers" else base
                ratio = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}" if base else "-"
                grow = r["peak_mb"] - r["loaded_mb"]
                print(
                    f"{n:>6}  {kind:<16}{r['tokens_per_s']:>9.1f}{ratio:>8}{r['loaded_mb']:>8.0f}"
                    f"{r['peak_mb']:>9.0f}{grow:>7.0f}{r['seconds']:>7.2f}",
                    flush=True,
                )
        if args.pages:
            page_bytes(folder, args.pages, args.new)


if __name__ == "__main__":
    main()
