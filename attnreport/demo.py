"""`attnreport demo`: the whole pipeline on MiniLM and the bundled ticket-triage dataset.

The first run fine-tunes and exports the demo model into the cache; later runs reuse it.
The site shows the held-out split only, so its accuracy is honest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from attnreport.core.config import (
    AnalysisConfig,
    CompareConfig,
    DataConfig,
    GenerateConfig,
    ModelConfig,
    ProbeConfig,
    ReportConfig,
    SiteConfig,
    VariantConfig,
)
from attnreport.core.modelcard import ModelCard, is_exported
from attnreport.core.resources import bundled
from attnreport.pipeline import BuildResult, build
from attnreport.site.build import check_site_target
from attnreport.site.pages import Subsite
from attnreport.trace.cache import default_cache_dir

DEMO_RECIPE = "minilm-triage-v1"
HELD_OUT = 0.3
TITLE = "Ticket triage with MiniLM (attnreport demo)"
GENERATION_TITLE = "Answers of a small causal LM trained in the demo (attnreport demo)"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


#: the demo's own token groups beside the built-in ones: symptom words, and amounts of money
DEMO_TOKEN_GROUPS = {
    "symptoms": ["pain", "fever", "cough", "breath", "chest", "bleeding", "dizzy", "rash", "numb"],
    "amounts": "regex:[$£€]\\s?\\d[\\d,.]*|\\d[\\d,.]*\\s?(?:pounds|euros|dollars|GBP|EUR|USD)",
}


#: the demo's probe: is "urgent" read from the deadline words? Every one softened, then ask again
DEMO_PROBE = ProbeConfig(
    name="deadline words softened",
    replace={
        "now": "eventually",
        "asap": "eventually",
        "tonight": "next month",
        "today": "last month",
        "before 5pm": "next month",
    },
    top=3,
)


def demo_rows() -> list[dict]:
    path = bundled("examples") / "demo" / "tickets.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def split(rows: list[dict], *, held_out: float = HELD_OUT, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """A stratified split, the same on every machine: held_out of each label is kept back."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in sorted({r["label"] for r in rows}):
        group = sorted((r for r in rows if r["label"] == label), key=lambda r: r["id"])
        order = rng.permutation(len(group))
        k = round(held_out * len(group))
        test += [group[i] for i in order[:k]]
        train += [group[i] for i in order[k:]]
    return sorted(train, key=lambda r: r["id"]), sorted(test, key=lambda r: r["id"])


def demo_model(cache: Path, *, log=_stderr) -> tuple[Path, Path]:
    """The exported demo model and the held-out data file, made once and cached."""
    from attnreport.export.demo_model import minilm_folder

    rows = demo_rows()
    train, test = split(rows)
    labels = sorted({r["label"] for r in rows})
    digest = hashlib.sha256(DEMO_RECIPE.encode())
    digest.update(json.dumps(rows, sort_keys=True).encode())
    digest.update((minilm_folder() / "model.safetensors").read_bytes())
    folder = Path(cache) / "demo" / digest.hexdigest()[:16]
    model_dir, data_path = folder / "model", folder / "heldout.jsonl"
    if not is_exported(model_dir):
        # both import torch only when called, and say how to install it when it is missing
        from attnreport.export import export_model
        from attnreport.export.demo_model import fine_tune

        checkpoint = folder / "checkpoint"
        shutil.rmtree(checkpoint, ignore_errors=True)
        log(f"fine-tuning MiniLM on {len(train)} training texts (held out: {len(test)})")
        recipe = fine_tune(
            [r["text"] for r in train], [labels.index(r["label"]) for r in train], labels, checkpoint, log=log
        )
        card = export_model(checkpoint, model_dir, quantize="int8", log=log)
        card.extra["notes"] = {
            "Training": (
                f"all-MiniLM-L6-v2 with a classification head, fine-tuned for {recipe['epochs']} epochs "
                f"on {recipe['train_size']} training texts (training accuracy "
                f"{100 * recipe['train_accuracy']:.1f}%). The examples below are the {len(test)} "
                f"held-out texts, never seen in training."
            )
        }
        card.save(model_dir)
        shutil.rmtree(checkpoint, ignore_errors=True)
    ModelCard.load(model_dir)
    data_path.write_text(
        "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in test), encoding="utf-8"
    )
    return model_dir, data_path


def demo_generation(cache: Path, *, log=_stderr) -> tuple[Path, Path]:
    """The demo's causal LM, trained from scratch and exported (KV-cache decoder and lm_head
    too), and its prompts file; made once and cached."""
    from attnreport.demo_lm import DEMO_CONTRASTS, DEMO_PROMPTS, demo_lm, held_out_prompt

    checkpoint, facts = demo_lm(cache, log=log)
    folder = checkpoint.parent
    model_dir, prompts = folder / "export", folder / "prompts.jsonl"
    if not is_exported(model_dir):
        from attnreport.export import export_model

        card = export_model(checkpoint, model_dir, log=log)
        card.extra["notes"] = {
            "Training": (
                f"A small {facts.get('architecture', 'Qwen2')}-style causal LM "
                f"({facts['parameters']:,} parameters) trained from scratch in this demo, in "
                f"{facts['seconds']:.0f} s on this machine, on {facts['train_pairs']} question-answer "
                f"pairs of banking, medicine and customer service written for attnreport "
                f"(examples/demo/qa.jsonl). Held-out answers: perplexity "
                f"{facts['heldout_perplexity']:.2f} against {facts['unigram_perplexity']:.0f} for "
                f"token frequencies alone. It has memorised its answers rather than learnt the language: "
                f"asked a question it never saw, it answers a nearby one (label: held out)."
            )
        }
        card.save(model_dir)
    rows = [
        {
            "id": cid,
            "prompt": text,
            "label": "held out" if held_out_prompt(cid, facts) else "seen in training",
            **({"contrast": DEMO_CONTRASTS[cid]} if cid in DEMO_CONTRASTS else {}),
        }
        for cid, text in DEMO_PROMPTS
    ]
    prompts.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return model_dir, prompts


def run_demo(out: Path, *, log=_stderr, progress: bool = True, theme: str = "light") -> BuildResult:
    """The classification report at `out`, with the generation report in its ``generation/``."""
    cache = default_cache_dir()
    out = check_site_target(out, inputs=[cache])  # before a model is trained
    started = time.perf_counter()
    model_dir, data_path = demo_model(cache, log=log)
    log(f"demo classifier ready in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    lm_dir, prompts = demo_generation(cache, log=log)
    log(f"demo causal LM ready in {time.perf_counter() - started:.0f} s")
    generation = ReportConfig(
        title=GENERATION_TITLE,
        model=ModelConfig(path=lm_dir),
        data=DataConfig(path=prompts),
        site=SiteConfig(theme=theme),
        generate=GenerateConfig(enabled=True, max_new_tokens=40, chat_template=True),
        variants=[
            VariantConfig(
                of="gen-zh-apple-founded-1",
                prompt="科技公司苹果成立于哪一年?",
                name="苹果 named a technology company (科技公司) in the prompt",
            ),
            VariantConfig(
                of="fin-card-declined-1", prompt="Why was my bank card declined?", name="bank added"
            ),
        ],
        cache_dir=cache,
    )
    generation.validate()
    config = ReportConfig(
        title=TITLE,
        model=ModelConfig(path=model_dir),
        # the tickets come from three domains: results side by side per domain
        data=DataConfig(path=data_path, group_column="domain"),
        site=SiteConfig(theme=theme),
        # an urgent ticket predicted as a complaint is the miss that matters: the index lists them
        analysis=AnalysisConfig(critical_labels=["urgent"], token_groups=DEMO_TOKEN_GROUPS),
        compare=CompareConfig(quantized=True, name="int8 (dynamic quantization)"),
        probes=[DEMO_PROBE],
        cache_dir=cache,
    )
    config.validate()
    scratch = out.with_name(f".{out.name}.generation-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        started = time.perf_counter()
        build(generation, scratch, log=log, progress=progress)
        log(f"generation report built in {time.perf_counter() - started:.0f} s")
        sub = Subsite(title=GENERATION_TITLE, path="generation", source=scratch)
        started = time.perf_counter()
        result = build(config, out, log=log, progress=progress, subsites=[sub])
        log(f"classification report built in {time.perf_counter() - started:.0f} s")
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
