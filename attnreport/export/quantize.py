"""int8 dynamic quantization of an export, with its cost in attention fidelity measured.

Quantized weights run faster but move the attention weights, by how much depends on the
model, so each export measures it: the manifest records the difference and the speeds, and
the site shows the difference beside every int8 number (benchmarks/run.py compares at scale).
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path

import numpy as np


def _throughput(session, feeds: dict, repeats: int = 5) -> float:
    session.run(None, feeds)
    start = time.perf_counter()
    for _ in range(repeats):
        session.run(None, feeds)
    elapsed = time.perf_counter() - start
    return repeats * feeds["input_ids"].shape[0] / elapsed


def quantize_int8(folder: Path, ids: np.ndarray, mask: np.ndarray, lengths: list[int]) -> dict:
    """Write `model.int8.onnx` beside `model.onnx` and return what it costs and gains."""
    import onnxruntime as ort
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
        session = ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
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
