"""Queries and keys of every attention layer, as the model's own attention saw them.

Why through transformers' attention interface: every architecture we export (BERT, GPT-2,
Llama, Qwen2, ...) calls ``ALL_ATTENTION_FUNCTIONS.get_interface(impl, eager_attention_forward)``
with the query and key *after* rotary position encoding and *before* grouped-query key heads are
repeated, and passes the scale it multiplies the scores by (GPT-2's inverse-layer scaling
included). Standing in for "eager" there, for the length of one forward pass, sees exactly what
the scores are made from, whatever the architecture does before; module hooks would see the
projections before rotary, and each family's rotary differs.

The recorder delegates to the model's own eager function, so the forward pass is unchanged. A
model whose attention does not go through the interface (GPT-2 with ``reorder_and_upcast_attn``)
records fewer calls than it has layers and is refused; one that adds to the scores what q and k
do not hold (soft-capping, ALiBi, relative position biases) fails `softmax_check` at export.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass

import numpy as np

from attnreport.core.errors import ExportError

#: the ONNX outputs a ``--with-qk`` export adds, each ``[B, L, H, n, head_dim]``
QK_OUTPUTS = ("queries", "keys")


@dataclass
class Captured:
    """One attention call: the query, the key repeated to the query heads, and the score scale."""

    query: object
    key: object
    scale: float


def _own_eager(module):
    """The eager attention function of the module's own modeling file (GPT-2's, Llama's, ...)."""
    own = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    if own is None:
        raise ExportError(
            f"--with-qk: {type(module).__name__} has no eager_attention_forward in its modeling "
            f"file, so its queries and keys cannot be captured; export without --with-qk"
        )
    return own


def _recorder(calls: list[Captured]):
    def record(module, query, key, value, attention_mask, scaling=None, **kwargs):
        if kwargs.get("softcap") or getattr(getattr(module, "config", None), "attn_logit_softcapping", None):
            raise ExportError(
                f"--with-qk: {type(module).__name__} soft-caps its attention scores, so q·k does not "
                f"reproduce them; export without --with-qk"
            )
        scale = query.shape[-1] ** -0.5 if scaling is None else scaling
        if not isinstance(scale, (int, float)):
            raise ExportError(f"--with-qk: {type(module).__name__} scales its scores by a tensor")
        groups = query.shape[1] // key.shape[1]
        # repeat_kv's order: query head h reads key head h // groups
        repeated = key.repeat_interleave(groups, dim=1) if groups > 1 else key
        calls.append(Captured(query=query, key=repeated, scale=float(scale)))
        return _own_eager(module)(module, query, key, value, attention_mask, scaling=scaling, **kwargs)

    return record


@contextlib.contextmanager
def capture_qk():
    """Within the block, every eager attention call records its query and key into the yielded list."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    calls: list[Captured] = []
    before = ALL_ATTENTION_FUNCTIONS._local_mapping.get("eager")
    ALL_ATTENTION_FUNCTIONS["eager"] = _recorder(calls)
    try:
        yield calls
    finally:
        if before is None:
            del ALL_ATTENTION_FUNCTIONS["eager"]
        else:
            ALL_ATTENTION_FUNCTIONS["eager"] = before


def stacked(calls: list[Captured], layers: int):
    """Queries and keys ``[B, L, H, n, head_dim]`` and the scale of each layer, from one forward pass."""
    import torch

    if len(calls) != layers:
        raise ExportError(
            f"--with-qk: {len(calls)} attention calls went through transformers' attention interface "
            f"for {layers} layers; this model computes some attention its own way, export without --with-qk"
        )
    queries = torch.stack([c.query for c in calls], dim=1)
    keys = torch.stack([c.key for c in calls], dim=1)
    return queries, keys, [c.scale for c in calls]


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
