"""What BertViz's calls are given, checked and made plain: attention as float32 numpy
``[layers, heads, rows, cols]``, tokens as strings, and the named blocks a view can switch between.

Attention is what transformers returns (a tuple of per-layer ``[1, heads, n, n]`` tensors) or the
same as numpy; a torch tensor is read by duck typing (``.detach().cpu().float().numpy()``), so
this module needs no torch. Every mistake is one `InputError` line naming both sizes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from attnreport.core.errors import InputError

#: tokens drawn in the muted colour, as the site draws a tokenizer's special tokens
_SPECIAL = re.compile(r"\[[A-Z_]+\]|<\|?[^<>\s|]+\|?>")


def as_array(value) -> np.ndarray:
    """A torch tensor (any device or dtype) or array-like, as float32 numpy."""
    if hasattr(value, "detach"):  # torch, without importing it
        value = value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float32)


def stack_layers(attention, what: str = "attention") -> np.ndarray:
    """Per-layer attentions (``[1, H, r, c]`` or ``[H, r, c]`` each) or one array
    (``[L, 1, H, r, c]`` or ``[L, H, r, c]``) as ``[L, H, r, c]``."""
    if attention is None:
        raise InputError(f"{what} is None; pass the model's attentions (output_attentions=True)")
    if isinstance(attention, (list, tuple)):
        if not attention:
            # transformers 5's BERT ends its outputs with an empty cross_attentions, so the
            # README's `outputs[-1]` is () there
            raise InputError(f"{what} is empty (no layers); pass outputs.attentions, not outputs[-1]")
        layers = [as_array(a) for a in attention]
    else:
        whole = as_array(attention)
        if whole.ndim not in (4, 5):
            raise InputError(
                f"{what} has {whole.ndim} dimensions; expected per-layer [batch, heads, n, n] "
                f"tensors (set output_attentions=True)"
            )
        layers = list(whole)
    squeezed = []
    for i, a in enumerate(layers):
        if a.ndim == 4:
            if a.shape[0] != 1:
                raise InputError(
                    f"{what} layer {i} has a batch of {a.shape[0]} texts; the views show 1 "
                    f"(pass attention[{i}][k:k+1] for text k)"
                )
            a = a[0]
        if a.ndim != 3:
            raise InputError(
                f"{what} layer {i} has {a.ndim} dimensions; expected [batch, heads, n, n] "
                f"(set output_attentions=True)"
            )
        if squeezed and a.shape != squeezed[0].shape:
            raise InputError(
                f"{what} layer {i} is {list(a.shape)} [heads, rows, cols] but layer 0 is "
                f"{list(squeezed[0].shape)}"
            )
        squeezed.append(a)
    return np.stack(squeezed)


def pick(indices: Sequence[int] | None, count: int, what: str, name: str) -> list[int]:
    """The chosen `indices` of `count` (all when None), each checked to be in range."""
    if indices is None:
        return list(range(count))
    chosen = [int(i) for i in indices]
    if not chosen:
        raise InputError(f"{name} is empty; leave it out to show every {what}")
    for i in chosen:
        if not 0 <= i < count:
            raise InputError(f"{name} has {what} {i}, but the attention has {count} {what}s (0–{count - 1})")
    return chosen


def prettify(tokens: Sequence[str]) -> list[str]:
    """BertViz's cleaning: byte-level and SentencePiece space marks as spaces, ``</w>`` removed."""
    return [t.replace("Ġ", " ").replace("▁", " ").replace("</w>", "") for t in tokens]


def special(tokens: Sequence[str]) -> list[bool]:
    """Which tokens look like a tokenizer's special tokens ([CLS], <s>, <|endoftext|>)."""
    return [bool(_SPECIAL.fullmatch(t.strip())) for t in tokens]


def token_list(tokens, what: str) -> list[str]:
    if tokens is None:
        raise InputError(f"{what} is required with its attention")
    if isinstance(tokens, str):
        raise InputError(f"{what} is one string; pass the list of tokens (tokenizer.convert_ids_to_tokens)")
    return [str(t) for t in tokens]


@dataclass
class Block:
    """One attention array ``[L, H, rows, cols]`` and the tokens of its rows and columns."""

    attention: np.ndarray
    queries: list[str]
    keys: list[str]


@dataclass
class Part:
    """A choice of the views' "Attention" menu: rows ``[r0, r1)`` and columns ``[c0, c1)`` of a block."""

    name: str
    block: int
    rows: tuple[int, int]
    cols: tuple[int, int]


def check_tokens(block: Block, what: str) -> None:
    """The attention's rows and columns match the tokens; the message names both sizes."""
    rows, cols = block.attention.shape[2:]
    if rows != len(block.queries):
        raise InputError(f"{what} has {rows} query positions but {len(block.queries)} tokens were given")
    if cols != len(block.keys):
        raise InputError(f"{what} has {cols} key positions but {len(block.keys)} tokens were given")


def gather(
    *,
    attention,
    tokens,
    sentence_b_start,
    encoder_attention,
    decoder_attention,
    cross_attention,
    encoder_tokens,
    decoder_tokens,
    include_layers,
    include_heads,
    prettify_tokens: bool,
) -> tuple[list[Block], list[Part], list[int], list[int]]:
    """The blocks and menu parts of a call, with the layers and heads shown (their original indices)."""
    blocks: list[Block] = []
    parts: list[Part] = []
    if attention is not None:
        if any(
            a is not None
            for a in (encoder_attention, decoder_attention, cross_attention, encoder_tokens, decoder_tokens)
        ):
            raise InputError(
                "attention is for self-attention models; pass either it with tokens, or the "
                "encoder_/decoder_/cross_ arguments, not both"
            )
        toks = token_list(tokens, "tokens")
        blocks.append(Block(stack_layers(attention), toks, toks))
        check_tokens(blocks[0], "attention")
        rows, cols = blocks[0].attention.shape[2:]
        if rows != cols:
            raise InputError(f"attention is {rows} × {cols}, not square: self-attention has one token list")
        n = len(toks)
        if sentence_b_start is None:
            parts.append(Part("All", 0, (0, n), (0, n)))
        else:
            b = int(sentence_b_start)
            if not 0 < b < n:
                raise InputError(f"sentence_b_start is {b}, but there are {n} tokens (it must be 1–{n - 1})")
            a_, b_ = (0, b), (b, n)
            parts += [
                Part("All", 0, (0, n), (0, n)),
                Part("Sentence A -> Sentence A", 0, a_, a_),
                Part("Sentence B -> Sentence B", 0, b_, b_),
                Part("Sentence A -> Sentence B", 0, a_, b_),
                Part("Sentence B -> Sentence A", 0, b_, a_),
            ]
    else:
        named = [
            ("Encoder", encoder_attention, encoder_tokens, encoder_tokens, "encoder_tokens"),
            ("Decoder", decoder_attention, decoder_tokens, decoder_tokens, "decoder_tokens"),
            ("Cross", cross_attention, decoder_tokens, encoder_tokens, "decoder_tokens and encoder_tokens"),
        ]
        for name, att, rows_tokens, cols_tokens, needs in named:
            if att is None:
                continue
            if rows_tokens is None or cols_tokens is None:
                raise InputError(f"{needs} required with {name.lower()}_attention")
            block = Block(
                stack_layers(att, f"{name.lower()}_attention"),
                token_list(rows_tokens, "tokens"),
                token_list(cols_tokens, "tokens"),
            )
            check_tokens(block, f"{name.lower()}_attention")
            if blocks and block.attention.shape[:2] != blocks[0].attention.shape[:2]:
                first = blocks[0].attention.shape[:2]
                raise InputError(
                    f"{name.lower()}_attention has {block.attention.shape[0]} layers × "
                    f"{block.attention.shape[1]} heads but {parts[0].name.lower()}_attention has "
                    f"{first[0]} × {first[1]}"
                )
            blocks.append(block)
            r, c = block.attention.shape[2:]
            parts.append(Part(name, len(blocks) - 1, (0, r), (0, c)))
        if not blocks:
            raise InputError(
                "no attention given: pass attention and tokens (or encoder_/decoder_/cross_attention)"
            )
    n_layers, n_heads = blocks[0].attention.shape[:2]
    layers = pick(include_layers, n_layers, "layer", "include_layers")
    heads = pick(include_heads, n_heads, "head", "include_heads")
    for block in blocks:
        block.attention = np.ascontiguousarray(block.attention[layers][:, heads])
        if prettify_tokens:
            block.queries, block.keys = prettify(block.queries), prettify(block.keys)
    return blocks, parts, layers, heads
