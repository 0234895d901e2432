"""The decision space in 3D: every example a point, every class the surface where the model's
probability for it crosses 0.5 on the PCA slice.

A point's colour is its true label's class colour (grey when unlabelled); a ring marks a wrong
prediction. A class's surface is the 0.5 iso-surface of its probability volume (marching
cubes on the grid of `DecisionSpace`), so the class wins everywhere on its inner side; a class
whose probability never crosses 0.5 on the grid gets no surface, and a note says so
(`DecisionFacts.no_surface`: the scene's notes are written from its `DecisionFacts`). Surfaces
are decimated to at most `MAX_TRIANGLES` triangles per class, keeping the scene's JSON small;
the decimation keeps surviving vertices where marching cubes put them (on the 0.5 level).

Cost is linear in the number of examples (numpy throughout; the per-point Python objects are
the label strings); the surfaces depend only on the grid.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from attnreport.analysis.decision import DecisionSpace, state_name
from attnreport.scenes.geometry import Mesh, Points, Scene
from attnreport.scenes.palette import UNLABELLED, class_color, hex_to_rgb
from attnreport.scenes.rendering import load_pyvista

#: upper bound on the triangles of one class's surface
MAX_TRIANGLES = 4000
#: opacity of the class surfaces
SURFACE_OPACITY = 0.28
#: longest hover text, in characters, before an ellipsis
LABEL_CHARS = 80
LEVEL = 0.5


def point_diameter(extent: float, count: int) -> float:
    """Marker diameter: 2% of the box diagonal for a few hundred points, shrinking as the
    cube root of the count past that (so markers keep about the same share of the volume)."""
    return extent * min(0.02, 0.12 / max(count, 1) ** (1 / 3))


def iso_surface(space: DecisionSpace, index: int, *, max_triangles: int | None = MAX_TRIANGLES):
    """The surface where class ``index``'s probability is `LEVEL`, as ``(vertices [V, 3],
    triangles [T, 3])`` in PCA coordinates, or None when the volume never crosses it.

    ``max_triangles=None`` skips decimation (the raw marching-cubes surface).
    """
    volume = np.asarray(space.volumes[index], dtype=np.float64)
    if not volume.min() < LEVEL < volume.max():
        return None
    pv = load_pyvista()
    axes = [np.asarray(a, dtype=np.float64) for a in space.axes]
    grid = pv.ImageData(
        dimensions=volume.shape,
        origin=tuple(a[0] for a in axes),
        spacing=tuple((a[-1] - a[0]) / max(len(a) - 1, 1) for a in axes),
    )
    grid.point_data["p"] = volume.ravel(order="F")  # VTK runs x fastest
    surface = grid.contour([LEVEL], scalars="p", method="flying_edges").triangulate()
    if surface.n_cells == 0:
        return None
    if max_triangles is not None and surface.n_cells > max_triangles:
        surface = _decimate(surface, max_triangles)
    faces = surface.faces.reshape(-1, 4)[:, 1:]
    return np.asarray(surface.points, dtype=np.float64), faces.astype(np.int64)


def _decimate(surface, max_triangles: int):
    """Vertex-removing decimation (surviving vertices stay on the level set); where topology
    stops it short of the bound, quadric decimation finishes the job."""
    reduced = surface.decimate_pro(1 - max_triangles / surface.n_cells, preserve_topology=True)
    while reduced.n_cells > max_triangles:
        reduced = reduced.decimate(1 - 0.95 * max_triangles / reduced.n_cells)
    return reduced


def decision_title(space: DecisionSpace) -> str:
    """ "Decision space" for the report's own; with the layer, and "(probe)" when a probe drew it."""
    if space.layer == -1 and space.source == "model_head":
        return "Decision space"
    return f"Decision space, {state_name(space.layer)}" + (" (probe)" if space.source == "probe" else "")


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class DecisionFacts:
    """What a decision scene's notes state, as data."""

    layer: int  # -1: the last
    pooling: str
    source: str  # who drew the surfaces: "model_head" or "probe"
    probe_target: str | None  # what a probe was fitted to: "label" or "prediction"
    variance: tuple[float, ...]  # the three axes' shares of the variance
    slice_agreement: float
    labelled: int  # examples with a known label ...
    wrong: int  # ... and those among them predicted wrongly (ringed)
    withheld: int  # examples not shown: no finite prediction
    collapsed: bool  # every example at one point
    no_surface: tuple[str, ...]  # classes whose probability never crosses `LEVEL` on the slice


def decision_notes(facts: DecisionFacts) -> list[str]:
    """The reader's notes under a decision scene, in words."""
    where = f"the states {state_name(facts.layer)}"
    if facts.source == "model_head":
        drawn_by = "the model's head"
    else:
        fitted = "the model's predictions" if facts.probe_target == "prediction" else "the true labels"
        drawn_by = (
            f"a logistic-regression probe fitted to {fitted} on {where} (a probe, not the model's head)"
        )
    notes = [
        f"axes: the first three principal components of {where} ({facts.pooling} pooling), "
        f"{sum(facts.variance):.0%} of the variance",
        f"surfaces: where a class's probability is {LEVEL} under {drawn_by}; the class wins inside",
        f"slice agreement {facts.slice_agreement:.0%}: the share of examples whose class at their "
        "point on this slice is the model's prediction",
        f"{facts.wrong} of {facts.labelled} labelled examples predicted wrongly (ringed)",
    ]
    if facts.collapsed:
        notes.append(
            f"every example has the same pooled state {state_name(facts.layer)} (nothing has mixed "
            "into it yet), "
            "so all share one point and nothing here separates the classes"
        )
    if facts.withheld:
        notes.append(
            f"{facts.withheld} example(s) not shown: the model gave a NaN or infinite output for "
            "them, so they have no prediction (their pages say which output)"
        )
    if facts.no_surface:
        notes.append(
            f"no surface for {', '.join(facts.no_surface)}: "
            f"the probability never crosses {LEVEL} on this slice"
        )
    return notes


def decision_scene(
    space: DecisionSpace,
    *,
    truth: list[str | None],
    predicted: list[str],
    texts: list[str],
    links: list[str | None],
    highlight: int | None = None,
) -> Scene:
    """The `Scene` of a decision space; ``truth``, ``predicted``, ``texts`` and ``links`` have
    one entry per example, in the order of ``space.coords``."""
    coords = np.asarray(space.coords, dtype=np.float64)
    n = len(coords)
    for name, values in (("truth", truth), ("predicted", predicted), ("texts", texts), ("links", links)):
        if len(values) != n:
            raise ValueError(f"decision scene: {len(values)} {name} for {n} examples")
    classes = {label: i for i, label in enumerate(space.labels)}
    unknown = sorted({str(t) for t in (*truth, *predicted) if t is not None and t not in classes})
    if unknown:
        raise ValueError(
            f"decision scene: label(s) {', '.join(unknown)} are not the model's; "
            f"known labels: {', '.join(space.labels)}"
        )
    truth_index = np.array([-1 if t is None else classes[t] for t in truth], dtype=np.int64)
    predicted_index = np.array([classes[p] for p in predicted], dtype=np.int64)
    palette = np.array([class_color(i) for i in range(len(space.labels))] + [hex_to_rgb(UNLABELLED)])
    colors = palette[truth_index]  # -1 picks the grey at the end
    labelled = truth_index >= 0
    wrong = labelled & (truth_index != predicted_index)

    low = np.array([a[0] for a in space.axes], dtype=np.float64)
    high = np.array([a[-1] for a in space.axes], dtype=np.float64)
    if n:
        low, high = np.minimum(low, coords.min(axis=0)), np.maximum(high, coords.max(axis=0))
    sizes = np.full(n, point_diameter(float(np.linalg.norm(high - low)), n))
    if highlight is not None and 0 <= highlight < n:
        sizes[highlight] *= 1.4
    names = [*space.labels, "unlabelled"]
    labels = [
        f"{names[t]} → {p}: {_short(text)}" for t, p, text in zip(truth_index, predicted, texts, strict=True)
    ]
    points = Points(
        xyz=coords,
        colors=colors,
        sizes=sizes,
        labels=labels,
        links=list(links),
        outline=wrong,
        highlight=highlight,
    )

    meshes, flat = [], []
    for index, label in enumerate(space.labels):
        surface = iso_surface(space, index)
        if surface is None:
            flat.append(label)
            continue
        vertices, triangles = surface
        meshes.append(Mesh(label, vertices, triangles, class_color(index), SURFACE_OPACITY))

    variance = tuple(float(v) for v in space.explained_variance)
    facts = DecisionFacts(
        layer=int(space.layer),
        pooling=space.pooling,
        source=space.source,
        probe_target=space.probe_target,
        variance=variance,
        slice_agreement=float(space.slice_agreement),
        labelled=int(labelled.sum()),
        wrong=int(wrong.sum()),
        withheld=int(space.withheld),
        collapsed=bool(n > 1 and np.ptp(coords, axis=0).max() <= 1e-9),
        no_surface=tuple(flat),
    )
    return Scene(
        kind="decision_space",
        title=decision_title(space),
        points=points,
        meshes=meshes,
        axis_labels=tuple(f"PC{i + 1} ({v:.1%})" for i, v in enumerate(variance)),
        notes=decision_notes(facts),
        bounds=np.stack([low, high], axis=1).reshape(6),
        facts=facts,
    )


def group_colours(groups: list[str | None]) -> tuple[np.ndarray, list[str]]:
    """``[N, 3]`` colours, one per point: each data group its palette colour in order of first
    appearance (the palette repeats past seven groups), grey for no group; and the groups' order."""
    order = list(dict.fromkeys(g for g in groups if g is not None))
    palette = np.array([class_color(i) for i in range(len(order))] + [hex_to_rgb(UNLABELLED)])
    index = {g: i for i, g in enumerate(order)}
    picks = np.array([index.get(g, -1) if g is not None else -1 for g in groups], dtype=np.int64)
    return palette[picks].reshape(-1, 3), order


def by_group(scene: Scene, groups: list[str | None], column: str) -> Scene:
    """The decision scene with its points coloured by data group instead of true label (the
    same points, rings and links). The class surfaces are left out: drawn in the class colours
    they would read as groups; they stay on the label views."""
    if len(groups) != len(scene.points.labels):
        raise ValueError(f"decision scene: {len(groups)} groups for {len(scene.points.labels)} points")
    colors, order = group_colours(groups)
    labels = [
        f"{g if g is not None else 'no ' + column}: {label}"
        for g, label in zip(groups, scene.points.labels, strict=True)
    ]
    points = replace(scene.points, colors=colors, labels=labels)
    notes = [
        f"colour: {column} ({', '.join(order)}{'; grey: none' if None in groups else ''}); "
        "ringed: wrong prediction",
        *(n for n in scene.notes if not n.startswith(("surfaces:", "no surface"))),
        "the class surfaces are on the label views",
    ]
    return replace(scene, title=f"{scene.title} · by {column}", points=points, meshes=[], notes=notes)
