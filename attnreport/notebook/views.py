"""`head_view` and `model_view` with BertViz's signatures, drawn by the site's figures."""

from __future__ import annotations

from collections.abc import Sequence

from attnreport.core.errors import InputError
from attnreport.notebook import inputs, page


def _data(view: str, blocks, parts, layers, heads) -> dict:
    return {
        "view": view,
        "layers": layers,
        "heads": heads,
        "blocks": [
            {
                "attention": page.packed(b.attention),
                "queries": b.queries,
                "keys": b.keys,
                "query_special": inputs.special(b.queries),
                "key_special": inputs.special(b.keys),
            }
            for b in blocks
        ],
        "parts": [{"name": p.name, "block": p.block, "rows": p.rows, "cols": p.cols} for p in parts],
    }


def head_view(
    attention=None,
    tokens=None,
    sentence_b_start=None,
    prettify_tokens=True,
    layer=None,
    heads=None,
    encoder_attention=None,
    decoder_attention=None,
    cross_attention=None,
    encoder_tokens=None,
    decoder_tokens=None,
    include_layers=None,
    html_action="view",
):
    """BertViz's head view: one layer's attention as lines from each attending token (left) to
    the tokens it attends to (right), drawn by the site's head view (``headview.js``).

    `attention` is what a transformers model returns with ``output_attentions=True`` (a tuple of
    per-layer ``[1, heads, n, n]`` tensors, torch or numpy) and `tokens` its tokens; an
    encoder-decoder model passes `encoder_attention`, `decoder_attention`, `cross_attention`
    and their tokens instead. `layer` is the layer shown first (default: the first included);
    `heads` the heads shown first: one head alone, several as their mean. `include_layers`
    limits the layer menu. `sentence_b_start` adds BertViz's "Attention" menu (sentence A -> B,
    ...). ``html_action='return'`` returns the ``IPython.display.HTML`` instead of showing it.
    """
    page.check_action(html_action)
    blocks, parts, layers, all_heads = inputs.gather(
        attention=attention,
        tokens=tokens,
        sentence_b_start=sentence_b_start,
        encoder_attention=encoder_attention,
        decoder_attention=decoder_attention,
        cross_attention=cross_attention,
        encoder_tokens=encoder_tokens,
        decoder_tokens=decoder_tokens,
        include_layers=include_layers,
        include_heads=None,
        prettify_tokens=prettify_tokens,
    )
    if layer is not None and layer not in layers:
        raise InputError(f"layer {layer} is not among the layers shown ({_listed(layers)})")
    data = _data("head", blocks, parts, layers, all_heads)
    data["layer"] = 0 if layer is None else layers.index(layer)
    data["selected"] = None if heads is None else inputs.pick(heads, len(all_heads), "head", "heads")
    rows = max(len(b.queries) for b in blocks)
    height = 150 + 20 * min(rows, 32)
    return page.deliver(page.frame("head", data, height=height), html_action)


def model_view(
    attention=None,
    tokens=None,
    sentence_b_start=None,
    prettify_tokens=True,
    display_mode="dark",
    encoder_attention=None,
    decoder_attention=None,
    cross_attention=None,
    encoder_tokens=None,
    decoder_tokens=None,
    include_layers=None,
    include_heads=None,
    html_action="view",
):
    """BertViz's model view: a thumbnail of every layer's and head's attention (the site's model
    view, ``modelview.js``); a click opens that head's head view below it.

    Arguments as `head_view`'s; `include_heads` limits the heads shown, and `display_mode` is
    ``'dark'`` (BertViz's default) or ``'light'``.
    """
    page.check_action(html_action)
    theme = page.theme_of(display_mode)
    blocks, parts, layers, heads = inputs.gather(
        attention=attention,
        tokens=tokens,
        sentence_b_start=sentence_b_start,
        encoder_attention=encoder_attention,
        decoder_attention=decoder_attention,
        cross_attention=cross_attention,
        encoder_tokens=encoder_tokens,
        decoder_tokens=decoder_tokens,
        include_layers=include_layers,
        include_heads=include_heads,
        prettify_tokens=prettify_tokens,
    )
    data = _data("model", blocks, parts, layers, heads)
    # the thumbnails are squares across the frame's width: as tall as wide, per layer
    height = 120 + int(len(layers) * min(90, 900 / max(1, len(heads))))
    return page.deliver(page.frame("model", data, theme=theme, height=height), html_action)


def _listed(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values)
