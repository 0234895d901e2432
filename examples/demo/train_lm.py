"""Train the toy LM (the generation demo's before SmolLM2) from scratch; print its figures and greedy answers.

    python examples/demo/train_lm.py [-o FOLDER]

Writes a Hugging Face checkpoint folder (a temporary one unless -o is given). Needs torch and
transformers (``pip install torch==2.13.0 'attnreport[export]'``). The tests train the same
model once into a cache instead (`attnreport.demo_lm.demo_lm`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from attnreport.demo_lm import DEMO_PROMPTS, corpus_path, held_out_prompt
from attnreport.export.demo_lm import greedy_answer, nearest_row, qa_rows, train_demo_lm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, help="checkpoint folder (default: temporary)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "demo-lm"
        rows = qa_rows(corpus_path())
        facts = train_demo_lm(out, rows=rows, log=lambda m: print(m, file=sys.stderr))
        print(f"checkpoint: {out}" + ("" if args.out else " (temporary, removed on exit)"))
        print(
            f"{facts['parameters']:,} parameters, vocab {facts['vocab_size']}, {facts['steps']} steps "
            f"in {facts['seconds']:.1f} s; {facts['train_pairs']} training pairs, "
            f"{facts['heldout_pairs']} held out"
        )
        print(f"training loss (last 20 steps): {facts['train_loss']:.4f}")
        print(
            f"held-out answers: perplexity {facts['heldout_perplexity']:.3f}, "
            f"unigram baseline {facts['unigram_perplexity']:.1f}"
        )
        print(
            f"held-out questions, greedy: {100 * facts['heldout_exact_answers']:.0f}% exact, "
            f"{100 * facts['heldout_right_intent']:.0f}% right answer, "
            f"{100 * facts['heldout_right_domain']:.0f}% right domain"
        )
        import torch
        import transformers
        from tokenizers import Tokenizer

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        torch.set_num_threads(facts["recipe"]["threads"])
        model = transformers.AutoModelForCausalLM.from_pretrained(str(out), attn_implementation="eager")
        tok = Tokenizer.from_file(str(out / "tokenizer.json"))
        by_id = {r["id"]: r for r in rows}
        for corpus_id, prompt in DEMO_PROMPTS:
            answer = greedy_answer(torch, model, tok, prompt)
            right = nearest_row(answer, rows)["intent"] == by_id[corpus_id]["intent"]
            verdict = "right" if right else "WRONG"
            seen = "held out" if held_out_prompt(corpus_id, facts) else "trained"
            print(f"[{seen}, {verdict}] {prompt}\n    -> {answer}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
