"""The head pages' own data: each head's attention on its most typical examples, and its
neighbours in the atlas.

A head's scores say what it does on average; a picture of its attention on a few texts lets a
reader check the label by eye. The pictures are cut from the example pages' spooled attention
(each example decoded once, however many heads it is typical for), so no model runs here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from attnreport.site.encode import packed_unit, unpack_unit
from attnreport.site.pages import ExamplePage, head_page

#: examples pictured per head (of its typical ones, most typical first)
PICTURES = 3
#: tokens pictured per example: a longer text shows its first this many queries and keys
PICTURE_TOKENS = 48


@dataclass
class HeadPicture:
    """One head's attention on one example: `attention` is the packed ``[m, m]`` block."""

    id: str
    page: str
    tokens: list[str]
    #: the example's token count (more than len(tokens) when the picture is cut)
    n: int
    attention: dict


@dataclass
class HeadContext:
    previous: str | None = None
    next: str | None = None
    pictures: list[HeadPicture] = field(default_factory=list)


def _unpack(block: dict) -> np.ndarray:
    return unpack_unit(block)


def head_contexts(
    heads: Sequence[dict], examples: Sequence[ExamplePage], *, pictures: int = PICTURES
) -> dict[tuple[int, int], HeadContext]:
    """Each head's (layer, head) -> its neighbours' pages and the pictures of its typical examples."""
    contexts = {}
    for i, head in enumerate(heads):
        contexts[head["layer"], head["head"]] = HeadContext(
            previous=head_page(heads[i - 1]["layer"], heads[i - 1]["head"]) if i > 0 else None,
            next=head_page(heads[i + 1]["layer"], heads[i + 1]["head"]) if i + 1 < len(heads) else None,
        )
    by_id = {page.record["id"]: page for page in examples}
    wanted: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for head in heads:
        for example_id in [i for i in head["typical"] if i in by_id][:pictures]:
            wanted[example_id].append((head["layer"], head["head"]))
    cut: dict[tuple[str, int, int], HeadPicture] = {}
    for example_id, which in wanted.items():  # each example's attention decoded once
        page = by_id[example_id]
        data = json.loads(page.data_file.read_text(encoding="utf-8"))
        attention = _unpack(data["attention"])
        m = min(data["n"], PICTURE_TOKENS)
        for layer, h in which:
            cut[example_id, layer, h] = HeadPicture(
                id=example_id,
                page=page.path,
                tokens=list(data["tokens"][:m]),
                n=data["n"],
                attention=packed_unit(attention[layer, h, :m, :m]),
            )
        del attention
    for head in heads:
        key = head["layer"], head["head"]
        contexts[key].pictures = [cut[i, *key] for i in [i for i in head["typical"] if i in by_id][:pictures]]
    return contexts
