"""Value norms for norm-weighted attention (Kobayashi et al., 2020): ``‖v_j^h W_O^h‖`` per head.

Attention head ``h`` adds ``Σ_j α_ij · v_j^h W_O^h`` to query ``i``'s residual stream: ``v_j^h`` is
the head's value of key ``j`` (grouped-query key-value heads repeated to the query heads) and
``W_O^h`` the slice of the attention output projection that the head's output passes through. The
norm of what key ``j`` carries is ``‖α_ij · v_j^h W_O^h‖ = α_ij · ‖v_j^h W_O^h‖`` (α ≥ 0), so an
attention weight is made norm-weighted by one number per layer, head and key: the value norm,
which `decoder.onnx` returns as ``value_norms``. Real LLMs put most attention on a sink whose
value norm is small; weighting by the norm shows what the attention carries past it.

The output projection's bias is left out: it is added once per query (after the sum over keys
and heads), so it belongs to no key; Kobayashi et al.'s ``‖α f(x)‖`` uses the value transform
without it likewise.

The graph computes ``‖W_O^h v‖`` as ``‖R^h v‖`` with ``W_O^h = Q^h R^h`` (reduced QR; ``Q^h`` has
orthonormal columns, so it keeps norms): a ``[head_dim, head_dim]`` factor per head, made at
export in float64, instead of the ``[d, head_dim]`` slice. A key then costs ``head_dim²`` per
head, not ``d · head_dim``; the factors are ``1 / heads`` of the output projection's bytes,
float32 whatever the model's dtype, never quantized (int4 takes 2-D weights only). Only the new
positions' norms are computed at each run: a key's value, and so its norm, does not change once
it is cached, so the run that adds a key to the cache returns its norm, and recomputing every
cached key at every step (``past · heads · head_dim²`` a layer) would cost more than the step.

Where the value comes from: the attention interface's call (`attnreport.export.attention_calls`)
receives the module and its value, so what the graph reads is what the model's attention read.
The export check compares with an independent reference: the values PyTorch's own forward pass
leaves in its KV cache, heads repeated here, multiplied by the weight slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnreport.core.errors import ExportError
from attnreport.export.attention_calls import capture_attention_calls, repeat_heads

#: the output of ``decoder.onnx``, ``[B, L, H, q]`` float32: the value norm of each new position
VALUE_NORMS = "value_norms"
#: attribute names of the attention output projection, by family (Llama/Qwen2, GPT-2, OPT, NeoX)
PROJECTIONS = ("o_proj", "c_proj", "out_proj", "dense")


def output_projection(module):
    """The output projection of attention `module` (a Linear, or GPT-2's Conv1D), or None."""
    for name in PROJECTIONS:
        proj = getattr(module, name, None)
        if proj is not None and getattr(proj, "weight", None) is not None and proj.weight.ndim == 2:
            return proj
    return None


def head_slices(proj, heads: int, head_dim: int):
    """``W_O^h`` for every head, ``[H, d_out, head_dim]`` float64: the columns of the output
    projection that read head ``h``'s output (``h * head_dim .. (h + 1) * head_dim`` of its input).
    A Linear stores its weight ``[out, in]``, GPT-2's Conv1D ``[in, out]``. None when the
    projection's input is not ``heads * head_dim`` wide."""
    weight = proj.weight.detach().double()
    conv1d = type(proj).__name__ == "Conv1D"  # transformers.pytorch_utils.Conv1D: x @ weight
    w = weight.T if conv1d else weight  # [out, in]
    if w.shape[1] != heads * head_dim:
        return None
    return w.reshape(w.shape[0], heads, head_dim).permute(1, 0, 2).contiguous()


@dataclass
class ValueNormLayout:
    """What `decoder.onnx` needs to compute the value norms: the attention modules in layer order
    and each layer's factors ``[H, r, head_dim]`` (``r = min(d_out, head_dim)``)."""

    modules: list
    heads: int
    head_dim: int
    #: per layer, the float64 ``W_O^h`` slices ``[H, d_out, head_dim]`` (the check's reference)
    slices: list
    #: ``[L, H, r, head_dim]`` float32: ``R^h`` of ``W_O^h = Q^h R^h``
    factors: object


def value_norm_layout(model, layers: int) -> tuple[ValueNormLayout | None, str]:
    """The layout for `model`, from one forward pass through the attention interface; or None and
    why not (attention that bypasses the interface, an output projection not found or not
    ``heads * head_dim`` wide), for the export log."""
    import torch

    try:
        with torch.no_grad(), capture_attention_calls(why="no value norms") as calls:
            ids = torch.tensor([[1, 2]])
            model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
    except ExportError as exc:
        return None, str(exc)
    if len(calls) != layers:
        return None, (
            f"{len(calls)} attention calls went through transformers' attention interface for {layers} layers"
        )
    heads, head_dim = int(calls[0].query.shape[1]), int(calls[0].value.shape[-1])
    slices = []
    for call in calls:
        proj = output_projection(call.module)
        w = None if proj is None else head_slices(proj, heads, head_dim)
        if w is None:
            return (
                None,
                f"{type(call.module).__name__} has no output projection of {heads} x {head_dim} inputs",
            )
        slices.append(w)
    factors = torch.stack([torch.linalg.qr(w, mode="r").R for w in slices]).float()
    return ValueNormLayout([c.module for c in calls], heads, head_dim, slices, factors), ""


def graph_value_norms(calls, modules, factors, q: int):
    """``[B, L, H, q]`` float32: the value norms of the last `q` positions of each recorded call,
    in the graph (``‖R^h v‖``; `factors` ``[L, H, r, head_dim]``)."""
    import torch

    if len(calls) != len(modules) or any(c.module is not m for c, m in zip(calls, modules, strict=True)):
        raise ExportError(
            f"{len(calls)} attention calls for {len(modules)} layers, or in another order than "
            f"the layers': value norms cannot be matched to their output projections"
        )
    norms = []
    for i, call in enumerate(calls):
        v = repeat_heads(call.value[:, :, -q:], factors.shape[1]).float()  # [B, H, q, hd]
        carried = torch.matmul(v, factors[i].transpose(-1, -2))  # [B, H, q, r]
        norms.append(torch.linalg.vector_norm(carried, dim=-1))
    return torch.stack(norms, dim=1)


def reference_value_norms(values, slices) -> np.ndarray:
    """``[L, H, N]`` float64 from each layer's cached values ``[kv_heads, N, head_dim]`` and
    weight slices ``[H, d_out, head_dim]``: ``‖W_O^h v_j^h‖``, heads repeated here."""
    import torch

    out = []
    for v, w in zip(values, slices, strict=True):
        rep = repeat_heads(v[None].double(), w.shape[0])[0]  # [H, N, hd]
        out.append(torch.linalg.vector_norm(torch.einsum("hnd,hed->hne", rep, w), dim=-1).numpy())
    return np.stack(out)
