"""Queries and keys of every attention layer, as the model's own attention saw them.

They are read from the attention interface's calls (`attnreport.export.attention_calls`): the query
and key *after* rotary position encoding, the key repeated here to the query heads, and the scale
the caller multiplies the scores by (GPT-2's inverse-layer scaling included). A model whose
attention does not go through the interface (GPT-2 with ``reorder_and_upcast_attn``) records
fewer calls than it has layers and is refused; one that soft-caps its scores is refused too; one
that adds to the scores what q and k do not hold (ALiBi, relative position biases) fails
`softmax_check` at export.
"""

from __future__ import annotations

import contextlib

import numpy as np

from attnreport.core.errors import ExportError
from attnreport.export.attention_calls import AttentionCall, capture_attention_calls, repeat_heads

#: the ONNX outputs a ``--with-qk`` export adds, each ``[B, L, H, n, head_dim]``
QK_OUTPUTS = ("queries", "keys")
#: what a user does when the queries and keys cannot be captured
WITHOUT = "export without --with-qk"


def capture_qk() -> contextlib.AbstractContextManager[list[AttentionCall]]:
    """Within the block, every eager attention call is recorded into the yielded list (`stacked`
    turns it into the queries and keys)."""
    return capture_attention_calls(why=WITHOUT)


def _scale(call: AttentionCall) -> float:
    name = type(call.module).__name__
    if call.softcap:
        raise ExportError(
            f"--with-qk: {name} soft-caps its attention scores, so q·k does not reproduce them; {WITHOUT}"
        )
    scale = call.query.shape[-1] ** -0.5 if call.scaling is None else call.scaling
    if not isinstance(scale, (int, float)):
        raise ExportError(f"--with-qk: {name} scales its scores by a tensor")
    return float(scale)


def stacked(calls: list[AttentionCall], layers: int):
    """Queries and keys ``[B, L, H, n, head_dim]`` (keys repeated to the query heads) and the scale
    of each layer, from one forward pass."""
    import torch

    if len(calls) != layers:
        raise ExportError(
            f"--with-qk: {len(calls)} attention calls went through transformers' attention interface "
            f"for {layers} layers; this model computes some attention its own way, {WITHOUT}"
        )
    scales = [_scale(c) for c in calls]
    queries = torch.stack([c.query for c in calls], dim=1)
    keys = torch.stack([repeat_heads(c.key, c.query.shape[1]) for c in calls], dim=1)
    return queries, keys, scales


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def visible(n: int, *, causal: bool) -> np.ndarray:
    """Which keys each query of a text of `n` tokens may read: all, or those up to itself."""
    return np.tril(np.ones((n, n), bool)) if causal else np.ones((n, n), bool)


def qk_attention(queries: np.ndarray, keys: np.ndarray, scales, *, causal: bool) -> np.ndarray:
    """Attention ``[L, H, n, n]`` from one text's queries and keys ``[L, H, n, d]``:
    softmax(q·kᵀ·scale) over the keys the query may read, 0 elsewhere."""
    q = np.asarray(queries, np.float64)
    k = np.asarray(keys, np.float64)
    scores = np.einsum("lhid,lhjd->lhij", q, k) * np.asarray(scales, np.float64)[:, None, None, None]
    seen = visible(q.shape[2], causal=causal)
    return np.where(seen, _softmax(np.where(seen, scores, -np.inf)), 0.0)


def softmax_check(outputs: dict, lengths: list[int], scales, *, causal: bool) -> float:
    """The largest difference, over a padded batch's real tokens, between the graph's attentions
    and the softmax of its own queries and keys: what the neuron view's scores claim."""
    worst = 0.0
    for i, n in enumerate(lengths):
        q = outputs["queries"][i, :, :, :n]
        k = outputs["keys"][i, :, :, :n]
        got = outputs["attentions"][i, :, :, :n, :n].astype(np.float64)
        worst = max(worst, float(np.max(np.abs(qk_attention(q, k, scales, causal=causal) - got))))
    return worst


def run_with_qk(model, encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """One forward pass of a transformers `model` on one text, `encoded` as its tokenizer returns
    it (``return_tensors="pt"``), with eager attention for that pass alone: its attentions
    ``[L, H, n, n]``, the queries and keys ``[L, H, n, head_dim]`` its scores were made from, and
    each layer's scale, as float32 numpy (the notebook's neuron view)."""
    import torch

    config = model.config
    before = getattr(config, "_attn_implementation", None)
    if before != "eager":
        model.set_attn_implementation("eager")
    try:
        with torch.no_grad(), capture_qk() as calls:
            out = model(**encoded, output_attentions=True, return_dict=True)
        attentions = getattr(out, "attentions", None)
        if attentions is None:
            raise ExportError(f"{type(model).__name__} returned no attentions with output_attentions=True")
        queries, keys, scales = stacked(calls, len(attentions))
    finally:
        if before is not None and before != "eager":
            model.set_attn_implementation(before)

    def numpy(t):
        return t.detach().to(torch.float32).cpu().numpy()

    return (
        numpy(torch.stack(tuple(attentions), dim=1))[0],
        numpy(queries)[0],
        numpy(keys)[0],
        scales,
    )
