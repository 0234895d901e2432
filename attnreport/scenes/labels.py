"""Where a scene's labels go in a still image: inside the canvas and clear of one another.

The same rules as the browser viewer's (templates/assets/viewer3d.js, `layout`), so the still
and the first frame say the same things: labels in order of importance (axis names, then the
scene's texts, then each axis's range); each at its first candidate place that lies inside the
canvas and overlaps no label placed before it, else left out (the viewer still shows it on
hover). An axis's labels may be moved into the canvas; a text stays beside its point.
Pure numpy: sizes come from the renderer (`rendering`), which measures the real glyphs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: pixels kept between two labels
GAP = 2.0


@dataclass(frozen=True)
class Label:
    text: str
    #: the anchor on screen, pixels from the top left
    anchor: tuple[float, float]
    #: the text's box, width and height in pixels
    size: tuple[float, float]
    #: "centred" (an axis name or range: centred on its anchor, moved in when it would leave the
    #: canvas) or "beside" (a text: right of its point, else left, above or below)
    place: str
    #: what it names: "axis", "range" or "text" (the renderer draws a range muted)
    kind: str = "text"


@dataclass(frozen=True)
class Placed:
    label: Label
    #: x0, y0, x1, y1 in pixels from the top left
    box: tuple[float, float, float, float]


def _candidates(label: Label) -> list[tuple[float, float]]:
    (x, y), (w, h) = label.anchor, label.size
    if label.place == "centred":
        return [(x - w / 2, y - h / 2), (x - w / 2, y - 1.6 * h), (x - w / 2, y + 0.6 * h)]
    if label.place == "beside":
        return [(x + 4, y - h / 2), (x - 4 - w, y - h / 2), (x - w / 2, y - 4 - h), (x - w / 2, y + 4)]
    raise ValueError(f"label place {label.place!r}: use 'centred' or 'beside'")


def _clear(box, placed: list[Placed]) -> bool:
    x0, y0, x1, y1 = box
    return all(
        x1 + GAP <= p.box[0] or p.box[2] + GAP <= x0 or y1 + GAP <= p.box[1] or p.box[3] + GAP <= y0
        for p in placed
    )


def lay_out(labels: list[Label], canvas: tuple[int, int]) -> list[Placed]:
    """The labels that fit, in `labels`' order (their priority), each with its box."""
    width, height = canvas
    placed: list[Placed] = []
    for label in labels:
        w, h = label.size
        if not label.text or not np.isfinite(label.anchor).all() or w > width or h > height:
            continue
        for x, y in _candidates(label):
            if label.place == "centred":
                x, y = min(max(x, 0.0), width - w), min(max(y, 0.0), height - h)
            box = (x, y, x + w, y + h)
            if x >= 0 and y >= 0 and box[2] <= width and box[3] <= height and _clear(box, placed):
                placed.append(Placed(label, box))
                break
    return placed
