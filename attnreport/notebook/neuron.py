"""`neuron_view`: BertViz's neuron view (``bertviz.neuron_view.show``) on a stock transformers
model, drawn by the site's neuron view (``neuronview.js``).

BertViz needs its own copies of the model classes to see queries and keys; here one forward pass
of the user's model records them through transformers' attention interface
(`attnreport.export.qk`, as ``attnreport export --with-qk`` does), so any model whose attention
goes through it works: BERT, RoBERTa, GPT-2, Llama, Qwen2, ... Whether the model is causal is
read from its own attention, not from `model_type`: the softmax of q·k × scale over the keys a
query may read must give the attention the model returned, and a model that adds anything else
to its scores (ALiBi, soft-capping) is refused, since the view would show scores it did not use.
"""

from __future__ import annotations

import numpy as np

from attnreport.core.errors import InputError
from attnreport.notebook import inputs, page

#: the largest difference between the model's attention and softmax(q·k × scale) that is accepted
TOLERANCE = 1e-3


def neuron_view(
    model,
    model_type,
    tokenizer,
    sentence_a,
    sentence_b=None,
    display_mode="dark",
    layer=None,
    head=None,
    html_action="view",
):
    """BertViz's neuron view: for one layer, head and query token, the query vector, each key
    vector, their elementwise product, the score q·k × scale and the model's attention.

    `model` is a transformers model (any attention implementation: the pass runs eager), and
    `tokenizer` its tokenizer; `sentence_b` makes a sentence pair. `model_type` ('bert', 'gpt2',
    ...) is accepted for BertViz's signature; the model itself says whether it is causal.
    `layer` and `head` are shown first. Needs torch (it runs the model).
    """
    from attnreport.export.qk import qk_attention, run_with_qk

    page.check_action(html_action)
    theme = page.theme_of(display_mode)
    encoded = (
        tokenizer(sentence_a, sentence_b, return_tensors="pt")
        if sentence_b
        else tokenizer(sentence_a, return_tensors="pt")
    )
    ids = [int(i) for i in encoded["input_ids"][0]]
    tokens = inputs.prettify(tokenizer.convert_ids_to_tokens(ids))
    attention, queries, keys, scales = run_with_qk(model, encoded)
    n_layers, n_heads = attention.shape[:2]
    causal = _causal(attention, queries, keys, scales, qk_attention)
    layers = list(range(n_layers))
    heads = list(range(n_heads))
    first_layer = _first(layer, n_layers, "layer")
    first_head = _first(head, n_heads, "head")
    from attnreport.site.encode import packed_signed

    config = getattr(model, "config", None)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or n_heads)
    data = {
        "view": "neuron",
        "layers": layers,
        "heads": heads,
        "layer": first_layer,
        "head": first_head,
        "read_position": "last" if causal else "first",
        "blocks": [
            {
                "attention": page.packed(attention),
                "queries": tokens,
                "keys": tokens,
                "query_special": inputs.special(tokens),
                "key_special": inputs.special(tokens),
            }
        ],
        "parts": [{"name": "All", "block": 0, "rows": [0, len(tokens)], "cols": [0, len(tokens)]}],
        "neuron": {
            "queries": packed_signed(queries),
            "keys": packed_signed(keys),
            "scales": [float(s) for s in scales],
            "head_dim": int(queries.shape[-1]),
            "kv_heads": kv_heads,
            "causal": causal,
        },
    }
    height = 150 + 18 * min(len(tokens), 40)
    return page.deliver(page.frame("neuron", data, theme=theme, height=height), html_action)


def _first(value, count: int, what: str) -> int:
    """The layer or head shown first (default 0), checked against the model's count."""
    if value is None:
        return 0
    if not 0 <= int(value) < count:
        raise InputError(f"{what} is {value}, but the model has {count} {what}s (0–{count - 1})")
    return int(value)


def _causal(attention, queries, keys, scales, qk_attention) -> bool:
    """Whether the model's attention is the causal or the full softmax of its queries and keys."""
    worst = {
        causal: float(np.max(np.abs(qk_attention(queries, keys, scales, causal=causal) - attention)))
        for causal in (False, True)
    }
    causal = worst[True] < worst[False]
    if worst[causal] > TOLERANCE:
        raise InputError(
            f"the model's attention differs from softmax(q·k × scale) of its queries and keys by "
            f"{worst[causal]:.3g} (more than {TOLERANCE}): it adds to its scores what q and k do not "
            f"hold, so the neuron view would show scores the model did not use"
        )
    return causal
