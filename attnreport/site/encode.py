"""Data for pages: deterministic JSON that is safe inside <script type="application/json">,
and compact quantised attention.

Numbers are rounded to a fixed number of significant digits and keys sorted, so the same inputs give the
same bytes. Non-finite numbers become null and are counted, so a page can flag them.
"""

from __future__ import annotations

import base64
import json
import zlib

import numpy as np

from attnreport.core.jsonsafe import clean

_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def dumps(value) -> str:
    """Deterministic JSON text (sorted keys, fixed precision)."""
    return json.dumps(
        clean(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def script_json(value) -> str:
    """JSON that can sit inside a <script type="application/json"> element without closing it."""
    text = json.dumps(clean(value), sort_keys=True, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return script_safe(text)


def script_safe(text: str) -> str:
    """JSON text (already ASCII) with the characters that could close a <script> element escaped."""
    for char, escape in _SCRIPT_ESCAPES.items():
        text = text.replace(char, escape)
    return text


#: a page's attention block: the square roots of weights in [0, 1], as uint8, deflated, base64
UNIT_ENCODING = "uint8-sqrt-deflate-base64"


def packed_unit(weights: np.ndarray) -> dict:
    """Weights in [0, 1] as the page's compact attention block (`UNIT_ENCODING`).

    Why square roots: a real LLM spreads much of its attention thinly (on SmolLM2-135M-Instruct's
    answer rows, 65% of the non-zero weights are below 1/510 and would round to 0 in a linear
    byte); the square root keeps a weight of 1/2000 within 10% and one of 1e-5 non-zero, at the
    cost of an absolute error of up to 1/255 near 1 (a linear byte's is half that) and about
    twice the bytes. Attention rows are mostly near-zero, so deflate shrinks them; the browser
    inflates them with DecompressionStream, which needs no library and works from file://.
    """
    w = np.asarray(weights, dtype=np.float64)
    q = np.rint(np.sqrt(np.clip(w, 0.0, 1.0)) * 255.0).astype(np.uint8)
    return {
        "encoding": UNIT_ENCODING,
        "scale": 1 / 255,
        "shape": list(w.shape),
        "data": base64.b64encode(zlib.compress(q.tobytes(), 9)).decode("ascii"),
    }


def unpack_unit(block: dict) -> np.ndarray:
    """A `packed_unit` block back to its weights (a linear ``uint8-deflate-base64`` one too)."""
    raw = zlib.decompress(base64.b64decode(block["data"]))
    values = np.frombuffer(raw, dtype=np.uint8).reshape(block["shape"]).astype(np.float64) * block["scale"]
    return values * values if block["encoding"] == UNIT_ENCODING else values


def packed_signed(values: np.ndarray) -> dict:
    """Signed vectors (the last axis) as int8 with one float32 scale per vector: the scales, then
    the int8 values, deflated together, base64.

    Each vector is scaled so its largest magnitude is 127, so every value comes back within
    half a step, 1/254 of its vector's largest magnitude: queries and keys vary in size between
    tokens and heads far more than within one vector, so a shared scale would flatten most.
    The scales travel as bytes, not JSON numbers: a third of the size.
    """
    v = np.asarray(values, dtype=np.float64)
    peak = np.max(np.abs(v), axis=-1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype("<f4")
    q = np.rint(v / scale[..., None].astype(np.float64)).clip(-127, 127).astype(np.int8)
    return {
        "encoding": "int8-scaled-deflate-base64",
        "shape": list(v.shape),
        #: the payload: one little-endian float32 scale per vector (leading axes in order), then the values
        "data": base64.b64encode(zlib.compress(scale.tobytes() + q.tobytes(), 9)).decode("ascii"),
    }


def unpack_signed(block: dict) -> np.ndarray:
    """The values of a `packed_signed` block, as the page decodes them."""
    shape = block["shape"]
    raw = zlib.decompress(base64.b64decode(block["data"]))
    count = int(np.prod(shape[:-1]))
    scales = np.frombuffer(raw[: 4 * count], dtype="<f4").astype(np.float64)
    q = np.frombuffer(raw[4 * count :], dtype=np.int8)
    return (q.reshape(-1, shape[-1]) * scales[:, None]).reshape(shape)
