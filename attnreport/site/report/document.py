"""The shell every report shares: schema, kind, title, generator, `model`, the examples and the
rows left out; a kind adds its own sections."""

from __future__ import annotations

from pathlib import Path

from attnreport import __version__
from attnreport.core.jsonsafe import clean
from attnreport.core.modelcard import ModelCard
from attnreport.site.encode import dumps

#: the report's file name at the site root (its presence marks a folder as an attnreport site)
REPORT_FILE = "report.json"

SCHEMA = 1

#: the keys the shell writes, which no kind's section may take
SHELL = ("schema", "kind", "title", "generator", "model", "nonfinite_examples", "skipped_rows", "examples")


def model_section(card: ModelCard) -> dict:
    """report.json's `model`; with ``gguf`` (the file, its quantization, dequantized) for a model
    exported from a GGUF file, and ``checkpoint_decoding`` where the checkpoint's own decoding
    settings differ from the greedy decoding the answers were made with."""
    model = {
        "architecture": card.architecture,
        "task": card.task,
        "layers": card.layers,
        "heads": card.heads,
        "hidden_size": card.hidden_size,
        "max_positions": card.max_positions,
        "causal": card.causal,
        "labels": card.labels,
        "read_position": card.read_position,
        "onnx": {
            "opset": card.opset,
            "max_abs_diff_to_pytorch": card.max_abs_diff,
            "weights_sha256": card.weights_sha256,
            "quantized": card.quantized,
        },
        "notes": card.extra.get("notes", {}),
    }
    if card.extra.get("gguf"):
        model["gguf"] = card.extra["gguf"]
    if card.generation is not None and card.generation.checkpoint_defaults:
        model["checkpoint_decoding"] = card.generation.checkpoint_defaults
    return model


def report_document(
    *,
    kind: str,
    title: str,
    card: ModelCard,
    examples: list[dict],
    sections: dict,
    skipped_rows: list[dict] | None = None,
) -> dict:
    """The whole report: the shell (the model, every example's entry in `examples`, the data
    file's rows the build skipped as bad in `skipped_rows`, so a row left out is never left out
    silently) and the `sections` of the report's `kind` (its metrics, heads, probes...)."""
    taken = sorted(set(sections) & set(SHELL))
    if taken:
        raise ValueError(f"report sections {taken} are the shell's own; a kind adds only its own sections")
    report = {
        "schema": SCHEMA,
        "kind": kind,
        "title": title,
        "generator": f"attnreport {__version__}",
        "model": model_section(card),
        "nonfinite_examples": [e["id"] for e in examples if "nonfinite" in e],
        "skipped_rows": list(skipped_rows or []),
        **sections,
        "examples": examples,
    }
    return clean(report)


def write_report(folder: Path, report: dict) -> Path:
    """Write `report` as the site's ``report.json`` (deterministic bytes) into a site being built
    (a fresh folder, swapped in whole when done, so no partial file is ever seen)."""
    path = Path(folder) / REPORT_FILE
    path.write_text(dumps(report) + "\n", encoding="utf-8", newline="\n")
    return path
