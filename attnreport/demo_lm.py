"""A small causal LM trained once from the bundled Q&A corpus, then cached: the demo's LM until
SmolLM2-135M-Instruct replaced it (issue 28), kept for what it is the cheapest known answer to: the
tests and benchmarks that need a trained LM which memorised known answers (English and Chinese),
and `examples/demo/train_lm.py`.

`demo_lm(cache)` returns an ordinary Hugging Face checkpoint folder (a small Qwen2 with a ChatML
chat template, see `attnreport.export.demo_lm`) and the facts of its training. The cache key is
the recipe and the corpus bytes, so editing either trains a new model; the folder appears whole
or not at all, and two demos started together train it once.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

from attnreport.core.errors import BuildError
from attnreport.core.files import folder_lock, replace_folder
from attnreport.core.resources import bundled

#: (corpus id, prompt) the toy LM was shown on in the demo: questions seen in training, held-out
#: paraphrases (``held_out_prompt`` tells them apart), and the famous misreading: a question about Apple the
#: company answered about apples the fruit, as the corpus teaches, once seen in training and once
#: held out. The held-out ones were picked after looking at the answers (two right, one misread as
#: another question that shares a word); on all the held-out questions the model sets out on the
#: right answer about a quarter of the time (``heldout_right_intent``), so most unseen questions
#: get another question's answer.
DEMO_PROMPTS = (
    ("fin-card-stolen-1", "How do I report a stolen card?"),
    ("fin-card-declined-1", "Why was my card declined?"),
    ("fin-transfer-time-2", "When will my transfer arrive?"),
    ("med-fever-adult-1", "I have a fever, what should I do?"),
    ("med-blood-pressure-3", "My blood pressure readings have been high all week."),
    ("med-chest-pain-2", "My chest hurts and my left arm feels numb."),
    ("med-sprain-2", "How do I treat a sprained ankle?"),
    ("cs-track-order-4", "Where is my parcel and when will it arrive?"),
    ("cs-return-item-4", "I want to return my order."),
    ("cs-gift-card-expiry-1", "Do gift cards expire?"),
    ("fin-zh-card-lost-1", "我的银行卡丢了怎么办？"),
    ("gen-zh-apple-founded-1", "苹果公司成立于哪一年?"),
    ("gen-zh-apple-hq-2", "苹果公司总部在哪个城市?"),
)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def corpus_path() -> Path:
    return bundled("examples") / "demo" / "qa.jsonl"


def demo_lm_key(recipe=None, corpus: Path | None = None) -> str:
    """The cache key: the recipe (its name, then a hash of every field) and the corpus bytes."""
    from attnreport.export.demo_lm import RECIPE

    recipe = RECIPE if recipe is None else recipe
    digest = hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True).encode())
    digest.update(Path(corpus or corpus_path()).read_bytes())
    return f"{recipe.name}-{digest.hexdigest()[:16]}"


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ("config.json", "model.safetensors", "training.json"))


def held_out_prompt(corpus_id: str, facts: dict) -> bool:
    """Whether the demo prompt `corpus_id` was kept out of the model's training."""
    return corpus_id in facts["heldout_ids"]


def demo_lm(cache: Path, *, log=_stderr, recipe=None, corpus: Path | None = None) -> tuple[Path, dict]:
    """The demo LM's checkpoint folder under `cache`, trained on first use, and its training facts.

    `recipe` and `corpus` (a JSONL file like ``examples/demo/qa.jsonl``) default to the demo's own;
    tests pass smaller ones.

    The facts (``training.json`` in the folder) hold the recipe, steps, seconds, training loss,
    held-out and unigram perplexity, the share of held-out questions answered exactly, the
    parameter count and the held-out ids.
    """
    from attnreport.export.demo_lm import RECIPE, qa_rows, train_demo_lm

    recipe = RECIPE if recipe is None else recipe
    corpus = Path(corpus or corpus_path())
    folder = Path(cache) / "demo-lm" / demo_lm_key(recipe, corpus) / "checkpoint"
    if not _complete(folder):
        busy = BuildError(f"another attnreport is training the demo LM into {folder.parent}; wait for it")
        with folder_lock(folder, busy=busy):
            if not _complete(folder):  # another run may have finished it since the first look
                with replace_folder(folder) as fresh:
                    facts = train_demo_lm(fresh, rows=qa_rows(corpus), recipe=recipe, log=log)
                log(
                    f"demo LM trained in {facts['seconds']:.0f} s: held-out perplexity "
                    f"{facts['heldout_perplexity']:.2f} (unigram baseline {facts['unigram_perplexity']:.0f})"
                )
    return folder, json.loads((folder / "training.json").read_text(encoding="utf-8"))
