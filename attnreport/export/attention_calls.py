"""Every attention call of one forward pass, as the model's own attention function received it.

Why through transformers' attention interface: every architecture we export (BERT, GPT-2,
Llama, Qwen2, ...) calls ``ALL_ATTENTION_FUNCTIONS.get_interface(impl, eager_attention_forward)``
with the attention module, the query and key *after* rotary position encoding, the value, all
*before* grouped-query key-value heads are repeated (and, with a KV cache, past and new positions
together), and the scale it multiplies the scores by (GPT-2's inverse-layer scaling included).
Standing in for "eager" there, for the length of one forward pass, sees exactly what attention is
made from, whatever the architecture does before; module hooks would see the projections before
rotary, and each family's rotary differs.

The recorder delegates to the model's own eager function, so the forward pass is unchanged. What
is recorded is the callers' to check: the queries and keys of ``--with-qk`` (`attnreport.export.qk`)
and the value norms of ``decoder.onnx`` (`attnreport.export.value_norms`) both read it.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass

from attnreport.core.errors import ExportError


@dataclass
class AttentionCall:
    """One call of the attention interface: its module and inputs, heads not yet repeated."""

    module: object
    #: ``[B, H, q, head_dim]``
    query: object
    #: ``[B, kv_heads, past + q, head_dim]`` each
    key: object
    value: object
    #: the score scale the caller passed (None: the eager default ``head_dim ** -0.5``)
    scaling: object
    #: the soft-cap the caller passed or the module's config declares (None: none)
    softcap: object


def own_eager(module, *, why: str):
    """The eager attention function of the module's own modeling file (GPT-2's, Llama's, ...);
    `why` ends the error when there is none (what the caller cannot do without it)."""
    own = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    if own is None:
        raise ExportError(
            f"{type(module).__name__} has no eager_attention_forward in its modeling file, "
            f"so its attention calls cannot be captured; {why}"
        )
    return own


def repeat_heads(tensor, heads: int):
    """Key or value heads ``[B, kv_heads, n, d]`` repeated to `heads` query heads in repeat_kv's
    order: query head h reads key-value head ``h // (heads / kv_heads)``."""
    groups = heads // tensor.shape[1]
    return tensor.repeat_interleave(groups, dim=1) if groups > 1 else tensor


def _recorder(calls: list[AttentionCall], why: str):
    def record(module, query, key, value, attention_mask, scaling=None, **kwargs):
        softcap = kwargs.get("softcap") or getattr(
            getattr(module, "config", None), "attn_logit_softcapping", None
        )
        calls.append(AttentionCall(module, query, key, value, scaling, softcap))
        return own_eager(module, why=why)(
            module, query, key, value, attention_mask, scaling=scaling, **kwargs
        )

    return record


@contextlib.contextmanager
def capture_attention_calls(*, why: str = "export without this option"):
    """Within the block, every eager attention call is recorded into the yielded list, in call
    order (layer order); `why` ends the error of a module without its own eager function."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    calls: list[AttentionCall] = []
    before = ALL_ATTENTION_FUNCTIONS._local_mapping.get("eager")
    ALL_ATTENTION_FUNCTIONS["eager"] = _recorder(calls, why)
    try:
        yield calls
    finally:
        if before is None:
            del ALL_ATTENTION_FUNCTIONS["eager"]
        else:
            ALL_ATTENTION_FUNCTIONS["eager"] = before
