"""Inspect a checkpoint folder before loading it, and refuse what is unsafe or unsupported.

Everything here runs before a byte is written, so a refused export leaves nothing behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from attnreport.core.errors import ExportError
from attnreport.core.files import sha256_folder

SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
#: the files `weights_sha256` covers (shards included)
WEIGHT_SUFFIXES = (".safetensors", ".bin")

#: families whose sequence-classification head we can export alone (head.onnx);
#: the value says how the head reads the pooled hidden state
HEAD_FAMILIES = {
    "bert": "bert_pooler",
    "distilbert": "distilbert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "gpt2": "score",
    "llama": "score",
    "qwen2": "score",
    "mistral": "score",
}
CAUSAL_TYPES = {"gpt2", "llama", "qwen2", "mistral", "gpt_neox", "phi", "gemma"}


@dataclass
class Checkpoint:
    folder: Path
    config: dict
    model_type: str
    task: str
    uses_pickle: bool
    causal: bool


def infer_task(config: dict) -> str:
    archs = config.get("architectures") or []
    for arch in archs:
        if arch.endswith("ForSequenceClassification"):
            return "sequence-classification"
        if arch.endswith("ForCausalLM") or arch.endswith("LMHeadModel"):
            return "causal-lm"
    return "feature-extraction"


def inspect_checkpoint(
    folder: Path, *, task: str | None, allow_pickle: bool, trust_remote_code: bool
) -> Checkpoint:
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(
            f"{folder}: not a folder; pass a local Hugging Face checkpoint folder "
            f"(with config.json and the weights) or a .gguf file"
        )
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ExportError(f"{folder}: no config.json; this is not a Hugging Face checkpoint folder")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportError(f"{config_path}: unreadable ({exc}); fix or re-download it") from exc
    if config.get("auto_map") and not trust_remote_code:
        raise ExportError(
            f"{folder}: this model runs its own Python code (auto_map in config.json); "
            f"read that code, then pass --trust-remote-code if you trust it"
        )
    has_safe = any((folder / name).is_file() for name in SAFE_WEIGHTS)
    has_pickle = any((folder / name).is_file() for name in PICKLE_WEIGHTS)
    if not has_safe and not has_pickle:
        raise ExportError(f"{folder}: no weights (model.safetensors or pytorch_model.bin) found")
    if not has_safe and not allow_pickle:
        raise ExportError(
            f"{folder}: weights are only in pickle format (pytorch_model.bin), which can run "
            f"arbitrary code when loaded; convert them to safetensors, or pass --allow-pickle "
            f"if you trust the file"
        )
    model_type = str(config.get("model_type", ""))
    chosen = task or infer_task(config)
    causal = model_type in CAUSAL_TYPES or bool(config.get("is_decoder"))
    if chosen == "causal-lm" and not causal:
        raise ExportError(
            f"{folder}: task causal-lm needs a decoder-only model; {model_type!r} is an encoder"
        )
    return Checkpoint(
        folder=folder,
        config=config,
        model_type=model_type,
        task=chosen,
        uses_pickle=not has_safe,
        causal=causal,
    )


def weights_sha256(folder: Path) -> str:
    """A hash over the weight files, so a manifest says which weights it was made from."""
    return sha256_folder(folder, WEIGHT_SUFFIXES)
