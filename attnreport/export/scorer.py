"""The scorer of a causal LM: the KV-cache decoder without attention outputs, for forced runs.

A forced run (`attnreport.trace.forced.ForcedAnswer`: a masked prompt followed by the answer,
teacher-forced) needs the log-probabilities of the answer's tokens and nothing else. On
``decoder.onnx`` it pays for what the recording graph returns: every layer's ``[B, H, q, past + q]``
attention, stacked into one output (24 x 14 x 2,049² x 4 B = 5.6 GB for a 2,049-token prompt at
Qwen2.5-0.5B size), and the hidden states of every position.

``scorer.onnx`` is the same model exported with transformers' ``sdpa`` attention and no attention,
hidden-state or value-norm output: inputs ``input_ids [B, q]``, ``attention_mask [B, past + q]``,
``logit_positions [k]`` (which of the ``q`` new positions to return logits for: a forced run needs
the ``T`` positions that chose the answer, not ``V`` floats for every prompt position) and the
cache; outputs ``logits [B, k, V]`` and the grown cache. The dynamo exporter writes ``sdpa`` as
MatMul / Softmax / MatMul (opset 18 has no fused attention), so one layer's scores live while that
layer runs and are freed after it; run in chunks of ``c`` positions against the cache (as the
trace's prefill is), a forced run's memory is the cache and one chunk's ``H x c x n`` scores:
linear in the prompt.

It shares the weights with the other graphs: the same module's parameters, written through the
export's one `SharedWeights` file, which keeps each distinct tensor once. Checked at export against
``decoder.onnx`` (itself checked against PyTorch) on a left-padded batch, whole and in chunks
against the cache: the logits at every real position, relative to the largest, within the export's
tolerance; the difference is recorded as ``scorer_logits`` in `DecoderCard.max_abs_diff`.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from attnreport.export.sessions import open_check_session

SCORER_FILE = "scorer.onnx"
#: the scorer's input naming the new positions whose logits it returns
LOGIT_POSITIONS = "logit_positions"
#: the check runs the batch whole, then in chunks of this many positions against the cache
CHECK_CHUNK = 5


@contextlib.contextmanager
def sdpa_attention(model):
    """`model` with transformers' ``sdpa`` attention for the duration (the export loads eager)."""
    before = getattr(model.config, "_attn_implementation", None)
    model.set_attn_implementation("sdpa")
    try:
        yield
    finally:
        if before is not None:
            model.set_attn_implementation(before)


def make_scorer(model):
    """``(input_ids, attention_mask, logit_positions, *past) -> (logits, *present)``."""
    import torch
    from transformers import DynamicCache

    layers = model.config.num_hidden_layers
    takes_positions = "position_ids" in inspect.signature(model.forward).parameters

    class Scorer(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, logit_positions, *past):
            q = input_ids.shape[1]
            cache = DynamicCache([(past[2 * i], past[2 * i + 1]) for i in range(layers)])
            kwargs = {}
            if takes_positions:
                kwargs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, -q:]
            out = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                cache=cache,
                use_cache=True,
                logits_to_keep=logit_positions,
                return_dict=True,
                **kwargs,
            )
            present = []
            for layer in out.cache.layers:
                present += [layer.keys, layer.values]
            return (out.logits, *present)

    return Scorer(model).eval()


def export_scorer(model, folder: Path, *, onnx_export, past_names, present_names, kv_heads, head_dim) -> str:
    """Write ``scorer.onnx`` into `folder` (the model switched to ``sdpa`` for the export alone);
    its file name. `onnx_export` is the export stage's one call of the dynamo exporter."""
    import torch

    layers = len(past_names) // 2
    dtype = next(model.parameters()).dtype
    batch = torch.export.Dim("batch", min=1, max=4096)
    past = torch.export.Dim("past", min=0, max=1 << 20)
    seq = torch.export.Dim("seq", min=1, max=1 << 20)
    keep = torch.export.Dim("keep", min=1, max=1 << 20)
    example_past = [torch.randn(2, kv_heads, 3, head_dim, dtype=dtype) for _ in range(2 * layers)]
    with sdpa_attention(model):
        onnx_export(
            make_scorer(model),
            (
                torch.randint(2, 10, (2, 4)),
                torch.ones(2, 7, dtype=torch.int64),
                torch.tensor([1, 3], dtype=torch.int64),
                *example_past,
            ),
            folder / SCORER_FILE,
            input_names=["input_ids", "attention_mask", LOGIT_POSITIONS, *past_names],
            output_names=["logits", *present_names],
            dynamic_shapes={
                "input_ids": {0: batch, 1: seq},
                "attention_mask": {0: batch, 1: torch.export.Dim.AUTO},
                "logit_positions": {0: keep},
                "past": tuple({0: batch, 2: past} for _ in range(2 * layers)),
            },
        )
    return SCORER_FILE


def _padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    b, n = len(rows), max(len(r) for r in rows)
    ids = np.full((b, n), pad_id, dtype=np.int64)
    mask = np.zeros((b, n), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, n - len(r) :], mask[i, n - len(r) :] = r, 1
    return ids, mask


def _empty_past(session, past_names, batch: int) -> dict[str, np.ndarray]:
    first = next(i for i in session.get_inputs() if i.name == past_names[0])
    dtype = np.float16 if "float16" in first.type else np.float32
    return {name: np.zeros((batch, first.shape[1], 0, first.shape[3]), dtype) for name in past_names}


def all_logits(
    session, ids: np.ndarray, mask: np.ndarray, *, past_names, present_names, chunk: int | None = None
) -> np.ndarray:
    """``[B, n, V]`` float32: the logits at every position of `ids`, from ``decoder.onnx`` or
    ``scorer.onnx`` (told apart by the ``logit_positions`` input), whole or in chunks of `chunk`
    positions against the cache."""
    b, n = ids.shape
    scorer = any(i.name == LOGIT_POSITIONS for i in session.get_inputs())
    past = _empty_past(session, past_names, b)
    chunk = chunk or n
    got = []
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        feeds = {"input_ids": ids[:, start:end], "attention_mask": mask[:, :end], **past}
        if scorer:
            feeds[LOGIT_POSITIONS] = np.arange(end - start, dtype=np.int64)
        out = session.run(["logits", *present_names], feeds)
        got.append(out[0].astype(np.float32))
        past = dict(zip(past_names, out[1:], strict=True))
    return np.concatenate(got, axis=1)


def check_scorer(
    folder: Path, decoder: str, rows: Sequence[Sequence[int]], *, pad_id: int, past_names, present_names
) -> float:
    """The scorer's logits against ``decoder.onnx``'s on `rows` left-padded into one batch (every
    real position; whole, and in chunks against the cache), relative to the largest logit; one
    session at a time."""
    ids, mask = _padded(rows, pad_id)
    names = dict(past_names=past_names, present_names=present_names)
    session = open_check_session(folder / decoder)
    want = all_logits(session, ids, mask, **names)
    del session  # one session at a time: each holds (or maps) the weights
    gc.collect()
    session = open_check_session(folder / SCORER_FILE)
    runs = [
        all_logits(session, ids, mask, **names),
        all_logits(session, ids, mask, chunk=CHECK_CHUNK, **names),
    ]
    del session
    gc.collect()
    real = mask.astype(bool)
    scale = max(1.0, float(np.max(np.abs(want[real]))))
    return max(float(np.max(np.abs(got[real] - want[real]))) / scale for got in runs)
