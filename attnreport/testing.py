"""Small builders of synthetic inputs for attnreport's tests and benchmarks, like `numpy.testing`.

Every later stage reads plain dataclasses, so it can be tested without a model: these build a
`ModelCard`, a `Trace`, an index example and a 3D viewer page by hand, with known shapes and
numbers. They live in the package, not in ``tests/``, so that benchmarks can use the same ones.
Only numpy is imported here; Pillow is imported when a page is written.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from attnreport.core.modelcard import ModelCard
from attnreport.core.resources import bundled
from attnreport.core.trace import Trace

__all__ = [
    "BLUE",
    "GREEN",
    "HOSTILE_LABEL",
    "HOSTILE_NOTE",
    "HOSTILE_TEXT",
    "LINE",
    "LONE",
    "MESH",
    "RED",
    "TRAP",
    "index_example",
    "make_trace",
    "many_points",
    "model_card",
    "random_attentions",
    "random_trace",
    "script_json",
    "synthetic_scene",
    "write_page",
]


# -- model cards and traces ------------------------------------------------------------------------


def model_card(**overrides) -> ModelCard:
    """A `ModelCard` of a small two-label BERT-like classifier; any field can be overridden.

    The defaults describe no real export (the weights hash is zeros): enough for the site and
    the analysis, which read only the card's facts.
    """
    fields = dict(
        architecture="BertForSequenceClassification",
        task="sequence-classification",
        layers=2,
        heads=2,
        hidden_size=4,
        max_positions=32,
        causal=False,
        labels=["alpha", "beta"],
        opset=18,
        weights_sha256="0" * 64,
        max_abs_diff={},
        read_position="first",
    )
    fields.update(overrides)
    return ModelCard(**fields)


def make_trace(
    attentions,
    *,
    tokens: Sequence[str] | None = None,
    special=None,
    id: str = "t",
    text: str | None = None,
    offsets=None,
    hidden=None,
    logits=None,
    label: str | None = None,
) -> Trace:
    """A `Trace` around given attentions ``[L, H, n, n]``, so a test plants the pattern it checks.

    By default the tokens are ``[CLS] w1 .. w(n-2) [SEP]``, a token is special when it starts
    with ``[``, the text is the tokens joined by spaces, offsets are zero and the hidden states
    are zeros ``[L+1, n, 1]``; pass any of them to set it.
    """
    attentions = np.asarray(attentions, dtype=np.float32)
    layers, _, n, _ = attentions.shape
    if tokens is None:
        tokens = ["[CLS]"] + [f"w{i}" for i in range(1, n - 1)] + ["[SEP]"]
    if special is None:
        special = [t.startswith("[") for t in tokens]
    return Trace(
        id=id,
        text=" ".join(tokens) if text is None else text,
        tokens=list(tokens),
        offsets=np.zeros((n, 2)) if offsets is None else offsets,
        special=special,
        attentions=attentions,
        hidden=np.zeros((layers + 1, n, 1)) if hidden is None else hidden,
        logits=logits,
        label=label,
    )


def random_attentions(
    layers: int, heads: int, n: int, *, scale: float = 2.0, random_state=None
) -> np.ndarray:
    """Rows of ``softmax(N(0, scale²))`` logits, ``[L, H, n, n]``: peaked like a trained model's,
    unlike uniform rows. `random_state` is a seed or a `numpy.random.Generator`."""
    rng = np.random.default_rng(random_state)
    logits = rng.normal(scale=scale, size=(layers, heads, n, n))
    attentions = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return attentions / attentions.sum(axis=-1, keepdims=True)


def random_trace(
    n: int = 9, layers: int = 3, heads: int = 2, d: int = 5, *, scale: float = 2.0, random_state=0
) -> Trace:
    """A `Trace` with random attentions (`random_attentions`) and standard-normal hidden states
    ``[L+1, n, d]``, tokens ``[CLS] w1 .. [SEP]``: for stages that need every array filled."""
    rng = np.random.default_rng(random_state)
    attentions = random_attentions(layers, heads, n, scale=scale, random_state=rng)
    hidden = rng.standard_normal((layers + 1, n, d)).astype(np.float32)
    return make_trace(attentions, id="t1", text="", hidden=hidden)


def index_example(id: str, text: str, *, label, prediction, confidence, page: str | None = None) -> dict:
    """One example as report.json lists it for the index, ``correct`` and ``page`` derived as
    the site derives them, so a synthetic list of thousands needs no model."""
    return {
        "id": id,
        "text": text,
        "label": label,
        "prediction": prediction,
        "correct": None if label is None else label == prediction,
        "confidence": confidence,
        "page": f"examples/{id}.html" if page is None else page,
    }


# -- 3D viewer pages -------------------------------------------------------------------------------

RED, GREEN, BLUE = (230, 40, 40), (20, 170, 60), (40, 90, 230)
LONE, TRAP = (240, 200, 0), (150, 0, 150)
MESH, LINE = (230, 140, 0), (90, 60, 200)
HOSTILE_TEXT = "<img src=x onerror=window.__pwned=1>"
HOSTILE_LABEL = "<script>window.__pwned=2</script> lone & <b>bold</b>"
HOSTILE_NOTE = "<img src=y onerror=window.__pwned=3> note"


def synthetic_scene() -> dict:
    """Three clusters at different places, a lone linked point, a point with a javascript: link,
    a translucent tetrahedron away from the clusters, three segments, texts and notes.

    Asymmetric on purpose: a point drawn in the wrong place lands on another colour.
    """
    rng = np.random.default_rng(0)
    xyz, colors, labels, links, outline = [], [], [], [], []
    for name, centre, color, ring in (
        ("red", (-2.2, -1.0, -1.2), RED, 0),
        ("green", (1.8, 1.2, 0.6), GREEN, 0),
        ("blue", (-0.8, 2.2, 1.8), BLUE, 1),
    ):
        for i in range(12):
            xyz.append(np.asarray(centre) + rng.normal(scale=0.35, size=3))
            colors.append(color)
            labels.append(f"{name} {i}")
            links.append(None)
            outline.append(ring)
    xyz += [np.array([2.4, -2.4, 2.2]), np.array([-2.4, 2.4, -2.4])]
    colors += [LONE, TRAP]
    labels += [HOSTILE_LABEL, "trap"]
    links += ["examples/lone.html", "javascript:window.__pwned=4"]
    outline += [0, 0]
    n = len(xyz)
    tetra = np.array([[1.2, -2.0, -2.4], [2.6, -2.0, -2.4], [1.9, -0.8, -2.4], [1.9, -1.6, -1.0]])
    return {
        "kind": "decision_space",
        "title": "synthetic scene",
        "axes": {"labels": ["PC1", "PC2", "PC3 <i>"], "bounds": [-3, 3, -3, 3, -3, 3]},
        "camera": {
            "position": [12.0, -16.8, 10.8],
            "target": [0.0, 0.0, 0.0],
            "up": [0.0, 0.0, 1.0],
            "fov": 30,
        },
        "points": {
            "xyz": np.round(np.concatenate(xyz), 4).tolist(),
            "color": [c for rgb in colors for c in rgb],
            "size": [0.3] * (n - 2) + [0.5, 0.5],
            "label": labels,
            "link": links,
            "outline": outline,
            "highlight": 12,
        },
        "meshes": [
            {
                "name": "tetra",
                "vertices": tetra.ravel().tolist(),
                "triangles": [0, 2, 1, 0, 1, 3, 1, 2, 3, 2, 0, 3],
                "color": list(MESH),
                "opacity": 0.45,
            }
        ],
        "lines": [
            {
                "name": "edges",
                "segments": [-3, -3, 3, 3, -3, 3, -3, -3, 2, -3, 3, 2, 0, -3, -3, 0, 3, -3],
                "width": [0.25, 0.05, 0.1],
                "opacity": [1.0, 0.5, 0.8],
                "color": list(LINE),
            }
        ],
        "texts": [{"xyz": [0, 0, 3], "text": "top"}, {"xyz": [-3, -3, 3], "text": HOSTILE_TEXT}],
        "notes": ["Synthetic scene for the viewer test.", HOSTILE_NOTE],
    }


def many_points(n: int) -> dict:
    """`synthetic_scene` with its points replaced by `n` random ones: the viewer under load."""
    rng = np.random.default_rng(1)
    scene = synthetic_scene()
    xyz = rng.uniform(-3, 3, size=(n, 3))
    scene["points"] = {
        "xyz": np.round(xyz, 4).ravel().tolist(),
        "color": rng.integers(0, 256, size=3 * n).tolist(),
        "size": [0.08] * n,
        "label": [f"point {i}" for i in range(n)],
        "link": [None] * n,
        "outline": [int(i % 7 == 0) for i in range(n)],
        "highlight": 0,
    }
    return scene


def script_json(data: dict) -> str:
    """JSON safe inside ``<script type="application/json">``, as the site writes it."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


#: what a built page loads for the 3D viewer, in order (base.css first: the viewer's look)
VIEWER_SCRIPTS = ("save.js", "viewer3d-gl.js", "viewer3d.js")


def write_page(folder: Path, scene: dict) -> Path:
    """A page holding `scene` the way the site embeds one (JSON in a figure, a still image as
    fallback) next to the shipped viewer's stylesheet and scripts; returns its index.html.

    It isolates the viewer from the site's templates, so a viewer test fails only for the viewer.
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    assets = bundled("templates") / "assets"
    for name in ("base.css", *VIEWER_SCRIPTS):
        shutil.copy(assets / name, folder / name)
    Image.new("RGB", (64, 48), (200, 210, 220)).save(folder / "scene.webp", format="WEBP")
    (folder / "examples").mkdir(exist_ok=True)
    (folder / "examples" / "lone.html").write_text(
        '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>lone</title><p>lone</p>'
    )
    scripts = "".join(f'<script src="{name}"></script>' for name in VIEWER_SCRIPTS)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>viewer test</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="base.css">
<style>body {{ margin: 0; padding: 1rem; font: 15px/1.5 system-ui, sans-serif; color: #1d2330;
background: #fff; }} figure {{ margin: 0; max-width: 640px; }}</style></head><body>
<h1>3D viewer</h1>
<figure class="scene3d">
<canvas hidden></canvas>
<script type="application/json" class="scene-data">{script_json(scene)}</script>
<img class="scene-fallback" src="scene.webp" width="640" height="480" alt="a still image of the scene">
<figcaption>{scene["title"]}</figcaption>
</figure>
{scripts}
</body></html>
"""
    (folder / "index.html").write_text(page, encoding="utf-8")
    return folder / "index.html"
