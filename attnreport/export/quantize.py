"""Quantization of an export, with its cost in attention fidelity measured: the registry of
``--quantize`` choices, and int8.

Quantized weights run faster but move the attention weights, by how much depends on the
model, so each export measures it: the manifest records the difference and the speeds
(`ModelCard.quantized`), and the site shows the difference beside the quantized numbers
(benchmarks/run.py compares at scale).

- ``int8``: dynamic quantization, written as ``model.int8.onnx`` beside ``model.onnx`` for the
  compare page; the float32 graphs stay what the report explains.
- ``int4``: weight-only 4-bit MatMulNBits for causal LMs; the graphs are replaced, so the report
  explains the int4 model (`attnreport.export.int4`).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnreport.core.errors import ExportError
from attnreport.export.sessions import open_check_session


def _throughput(session, feeds: dict, repeats: int = 5) -> float:
    session.run(None, feeds)
    start = time.perf_counter()
    for _ in range(repeats):
        session.run(None, feeds)
    elapsed = time.perf_counter() - start
    return repeats * feeds["input_ids"].shape[0] / elapsed


def quantize_int8(folder: Path, ids: np.ndarray, mask: np.ndarray, lengths: list[int]) -> dict:
    """Write `model.int8.onnx` beside `model.onnx` and return what it costs and gains."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(folder)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice about pre-processing at WARNING
    try:
        quantize_dynamic(
            str(folder / "model.onnx"), str(folder / "model.int8.onnx"), weight_type=QuantType.QInt8
        )
    finally:
        root.setLevel(level)
    feeds = {"input_ids": ids, "attention_mask": mask}
    outputs, speed = [], []
    for name in ("model.onnx", "model.int8.onnx"):  # one session at a time
        session = open_check_session(folder / name, timed=True)
        names = [o.name for o in session.get_outputs()]
        outputs.append(dict(zip(names, session.run(None, feeds), strict=True)))
        speed.append(_throughput(session, feeds))
        del session
        gc.collect()
    a, b = outputs
    attn = max(
        float(np.max(np.abs(a["attentions"][i, :, :, :n, :n] - b["attentions"][i, :, :, :n, :n])))
        for i, n in enumerate(lengths)
    )
    result = {
        "file": "model.int8.onnx",
        "method": "onnxruntime dynamic quantization, QInt8 weights",
        #: the largest change of one attention weight (any layer, head, query, key) on `texts` texts
        "max_attention_diff": attn,
        "texts": len(lengths),
        "fp32_seq_per_s": speed[0],
        "int8_seq_per_s": speed[1],
    }
    if "logits" in a:
        result["max_logit_diff"] = float(np.max(np.abs(a["logits"] - b["logits"])))
        result["same_argmax"] = bool(np.all(a["logits"].argmax(-1) == b["logits"].argmax(-1)))
    return result


def _int8(folder: Path, card, ids: np.ndarray, mask: np.ndarray, lengths: list[int], log) -> dict:
    log("quantizing to int8")
    return quantize_int8(folder, ids, mask, lengths)


def _int4(folder: Path, card, ids: np.ndarray, mask: np.ndarray, lengths: list[int], log) -> dict:
    from attnreport.export.int4 import quantize_int4

    return quantize_int4(folder, card, ids, mask, lengths, log=log)


@dataclass(frozen=True)
class Quantizer:
    """One ``--quantize`` choice: ``run(folder, card, ids, mask, lengths, log)`` quantizes the
    checked float32 export in `folder` (manifest `card`, check batch `ids`, `mask`, `lengths`)
    and returns the manifest's ``quantized`` record."""

    run: Callable[..., dict]
    #: the ``--help`` line
    help: str
    #: the tasks it applies to, and why not the others (None: every task)
    tasks: tuple[str, ...] | None = None
    refused: str = ""
    #: it quantizes the generation graphs, so a causal LM must have them
    needs_generation: bool = False


QUANTIZERS = {
    "int8": Quantizer(
        _int8, "int8: also write model.int8.onnx (dynamic quantization) and measure its speed and drift"
    ),
    "int4": Quantizer(
        _int4,
        "int4: causal LMs, replace every graph by its 4-bit weight version (MatMulNBits) and measure "
        "the drift from float32",
        tasks=("causal-lm",),
        refused="4-bit weights are for large causal LMs (the KV-cache decoder); use --quantize int8",
        needs_generation=True,
    ),
}


def check_quantize(name: str | None, *, dtype: str, task: str | None = None, generation: bool = True) -> None:
    """Raise `ExportError` when ``--quantize name`` does not apply (`task` None: not known yet)."""
    if name is None:
        return
    quantizer = QUANTIZERS.get(name)
    if quantizer is None:
        raise ExportError(f"--quantize {name!r} is unknown; known: {', '.join(sorted(QUANTIZERS))}")
    if dtype != "float32":
        raise ExportError(f"--quantize {name} quantizes a float32 export; drop --dtype {dtype}")
    if task is not None and quantizer.tasks is not None and task not in quantizer.tasks:
        raise ExportError(f"--quantize {name} does not apply to a {task} model: {quantizer.refused}")
    if task == "causal-lm" and quantizer.needs_generation and not generation:
        raise ExportError(f"--quantize {name} quantizes the generation graphs; drop --no-generation")
