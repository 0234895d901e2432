"""3D scenes: numbers first (iso-surfaces on the 0.5 level, the kept edges, the camera), then
pixels (colours where the camera says the points are), then the files (PNG, WebP, glb, JSON).

Scenes are asymmetric on purpose: a centred sphere passes whether the code is right or broken.
Facts are asserted as data (``scene.facts``), not as the notes' wording.

One file over 400 lines on purpose: the builders, the renderer and the files share the
hand-built inputs below (`linear_case`, `make_trace`, `asymmetric_scene`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pv = pytest.importorskip("pyvista")
PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402
from scipy.interpolate import RegularGridInterpolator  # noqa: E402

from attnreport.analysis.aggregate import head_average, sparsify  # noqa: E402
from attnreport.analysis.decision import PCA3, decision_space  # noqa: E402
from attnreport.analysis.rollout import rollout  # noqa: E402
from attnreport.core.trace import Trace  # noqa: E402
from attnreport.scenes import (  # noqa: E402
    CLASS_COLORS,
    Mesh,
    Points,
    Scene,
    camera_for,
    class_color,
    decision_scene,
    export_glb,
    flow_scene,
    iso_surface,
    project,
    render,
    to_json,
    to_pyvista,
    trajectory_scene,
)
from attnreport.scenes.camera import box_corners  # noqa: E402
from attnreport.scenes.decision import decision_notes  # noqa: E402
from attnreport.scenes.flow import EDGE_WIDTHS, Lattice, flow_notes, hidden_depth, lattice_scene  # noqa: E402
from attnreport.scenes.glb import unpack_glb  # noqa: E402
from attnreport.scenes.palette import BACKGROUND, FOREGROUND, UNLABELLED, hex_to_rgb  # noqa: E402
from attnreport.scenes.trajectory import trajectory_notes  # noqa: E402

LABELS = ["billing", "bug", "praise"]


def softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def linear_case(n=80, *, bias=(0.0, 0.0, 0.0), grid=20, seed=3):
    """A known linear head on anisotropic data: axes of different length and spacing, so a
    transposed volume or a swapped axis would put the surface in the wrong place."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)) * [4, 2.5, 1.2, 0.3, 0.2, 0.1] + [1.0, -2.0, 0.5, 0, 0, 0]
    w = rng.standard_normal((3, 6))
    b = np.asarray(bias, dtype=np.float64)

    def head(p):
        return np.asarray(p, dtype=np.float64) @ w.T + b

    preds = head(x).argmax(axis=1)
    space = decision_space(x, preds, head, labels=LABELS, grid=grid)
    return x, head, preds, space


def scene_for(space, preds, *, truth=None, highlight=None):
    n = len(space.coords)
    truth = [LABELS[p] for p in preds] if truth is None else truth
    return decision_scene(
        space,
        truth=truth,
        predicted=[LABELS[p] for p in preds],
        texts=[f"ticket number {i}" for i in range(n)],
        links=[f"examples/{i}.html" for i in range(n)],
        highlight=highlight,
    )


# -- palette ---------------------------------------------------------------------------------------


def test_palette_is_okabe_ito_and_cycles():
    assert class_color(0) == (0, 114, 178)
    assert class_color(1) == (230, 159, 0)
    assert len(set(CLASS_COLORS)) == len(CLASS_COLORS) == 7
    assert class_color(7) == class_color(0)
    with pytest.raises(ValueError, match="nonnegative"):
        class_color(-1)


# -- decision space: geometry ----------------------------------------------------------------------


def test_iso_surface_vertices_sit_on_the_half_probability_level():
    errors = {}
    for grid in (20, 40):
        x, head, _, space = linear_case(grid=grid)
        pca = PCA3().fit(x)
        for c in range(len(LABELS)):
            surface = iso_surface(space, c, max_triangles=None)
            assert surface is not None
            vertices, triangles = surface
            assert len(triangles) > 20 and triangles.max() < len(vertices)
            low, high = [a[0] for a in space.axes], [a[-1] for a in space.axes]
            on_grid = np.clip(vertices, low, high)
            assert np.abs(on_grid - vertices).max() < 1e-5  # VTK keeps float32 points
            volume = space.volumes[c].astype(np.float64)
            trilinear = RegularGridInterpolator(space.axes, volume)(on_grid)
            np.testing.assert_allclose(trilinear, 0.5, atol=1e-4)
            # against the head itself, off the grid: only the grid's sampling error, which
            # shrinks like the square of the spacing (a misplaced surface would not converge)
            exact = softmax(head(pca.inverse_transform(vertices)))[:, c]
            errors[grid, c] = np.abs(exact - 0.5).max()
    for c in range(len(LABELS)):
        assert errors[40, c] < min(0.05, errors[20, c] / 2.5)


def test_decimated_surfaces_stay_bounded_and_near_the_level():
    _, _, _, space = linear_case(grid=32)
    for c in range(len(LABELS)):
        raw = iso_surface(space, c, max_triangles=None)
        if raw is None:
            continue
        bound = max(50, len(raw[1]) // 8)
        vertices, triangles = iso_surface(space, c, max_triangles=bound)
        assert 0 < len(triangles) <= bound < len(raw[1])
        interp = RegularGridInterpolator(space.axes, space.volumes[c].astype(np.float64), bounds_error=False)
        inside = np.all(
            [(vertices[:, i] >= a[0]) & (vertices[:, i] <= a[-1]) for i, a in enumerate(space.axes)], 0
        )
        assert np.abs(interp(vertices[inside]) - 0.5).max() < 0.05
        centroids = vertices[triangles].mean(axis=1)
        inside = np.all(
            [(centroids[:, i] >= a[0]) & (centroids[:, i] <= a[-1]) for i, a in enumerate(space.axes)], 0
        )
        assert np.median(np.abs(interp(centroids[inside]) - 0.5)) < 0.05


def test_a_class_that_never_reaches_half_gets_no_surface_and_is_named():
    _, _, preds, space = linear_case(bias=(0.0, 0.0, -60.0))
    assert iso_surface(space, 2) is None
    scene = scene_for(space, preds)
    assert [m.name for m in scene.meshes] == ["billing", "bug"]
    assert scene.facts.no_surface == ("praise",)
    assert scene.notes == decision_notes(scene.facts)  # the reader's notes say what the facts hold


def test_decision_points_colours_rings_labels_and_axes():
    _, _, preds, space = linear_case()
    n = len(preds)
    truth = [LABELS[p] for p in preds]
    truth[0] = None  # unlabelled
    wrong = 1
    truth[wrong] = LABELS[(preds[wrong] + 1) % 3]
    scene = scene_for(space, preds, truth=truth, highlight=4)
    p = scene.points
    assert len(p) == n
    np.testing.assert_array_equal(p.xyz, space.coords)
    assert tuple(p.colors[0]) == hex_to_rgb(UNLABELLED)
    assert tuple(p.colors[wrong]) == class_color(LABELS.index(truth[wrong]))
    assert all(tuple(p.colors[i]) == class_color(preds[i]) for i in range(2, n))
    assert np.flatnonzero(p.outline).tolist() == [wrong]
    assert p.highlight == 4 and p.sizes[4] > p.sizes[5]
    assert p.links[3] == "examples/3.html" and "ticket number 3" in p.labels[3]
    for i, v in enumerate(space.explained_variance):
        assert scene.axis_labels[i] == f"PC{i + 1} ({v * 100:.1f}%)"
    assert (scene.facts.labelled, scene.facts.wrong) == (n - 1, 1)  # one unlabelled, one wrong
    assert scene.facts.slice_agreement == space.slice_agreement
    assert scene.facts.no_surface == () and scene.facts.withheld == 0 and not scene.facts.collapsed
    for mesh in scene.meshes:
        assert mesh.color == class_color(LABELS.index(mesh.name)) and 0 < mesh.opacity < 1
    with pytest.raises(ValueError, match="known labels: billing, bug, praise"):
        decision_scene(space, truth=["spam"] * n, predicted=truth, texts=[""] * n, links=[None] * n)
    with pytest.raises(ValueError, match="3 texts for 80 examples"):
        decision_scene(
            space, truth=truth, predicted=[LABELS[q] for q in preds], texts=[""] * 3, links=[None] * n
        )


def test_a_probe_at_another_layer_says_so():
    x, head, preds, _ = linear_case()
    own = scene_for(decision_space(x, preds, head, labels=LABELS, grid=8), preds)
    assert own.title == "Decision space"
    assert (own.facts.layer, own.facts.source, own.facts.probe_target) == (-1, "model_head", None)
    probe = decision_space(
        x, preds, head, labels=LABELS, grid=8, layer=2, source="probe", probe_target="prediction"
    )
    scene = scene_for(probe, preds)
    assert scene.title == "Decision space, after layer 1 (probe)"  # state 2: after layers 0 and 1
    facts = scene.facts
    want = {"layer": 2, "pooling": "first", "source": "probe", "probe_target": "prediction"}
    assert {name: getattr(facts, name) for name in want} == want
    assert facts.slice_agreement == probe.slice_agreement
    np.testing.assert_allclose(facts.variance, PCA3().fit(x).explained_variance_ratio_, atol=1e-12)
    assert scene.notes == decision_notes(facts)


def test_withheld_examples_and_a_collapsed_layer_are_counted():
    """Every example the same vector (a layer nothing has mixed into yet): one point for all;
    examples without a finite prediction are counted, not drawn."""
    x = np.ones((6, 4))
    preds = np.array([0, 1, 2, 0, 1, 2])
    space = decision_space(x, preds, lambda p: np.zeros((len(p), 3)), labels=LABELS, grid=4)
    space = dataclasses.replace(space, withheld=2)
    scene = scene_for(space, preds)
    assert scene.facts.collapsed and scene.facts.withheld == 2
    assert scene.facts.no_surface == tuple(LABELS)  # every class sits at 1/3 everywhere
    assert len(scene.points) == 6 and np.ptp(scene.points.xyz, axis=0).max() == 0
    assert scene.notes == decision_notes(scene.facts)


# -- attention flow --------------------------------------------------------------------------------


def make_trace(n=9, layers=3, heads=2, d=5, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(layers, heads, n, n))
    att = np.exp(logits - logits.max(axis=-1, keepdims=True))
    att /= att.sum(axis=-1, keepdims=True)
    hidden = rng.standard_normal((layers + 1, n, d)).astype(np.float32)
    tokens = ["[CLS]"] + [f"w{i}" for i in range(1, n - 1)] + ["[SEP]"]
    special = np.zeros(n, dtype=bool)
    special[[0, -1]] = True
    return Trace(
        id="t1",
        text="",
        tokens=tokens,
        offsets=np.zeros((n, 2)),
        special=special,
        attentions=att,
        hidden=hidden,
    )


def test_flow_edges_are_the_sparsified_head_average_and_the_mass_is_stated():
    trace = make_trace()
    n, layers = trace.n_tokens, trace.layers
    for k in (1, 3):
        scene = flow_scene(trace, rollout_row=rollout(trace.attentions)[0], top_k=k)
        expected = sparsify(head_average(trace.attentions), top_k=k)
        xyz = scene.points.xyz.reshape(layers + 1, n, 3)
        # named by the attention layer they draw, counted from 0 as everywhere in the report
        assert [lines.name for lines in scene.lines] == [f"layer {layer}" for layer in range(layers)]
        kept_total = 0.0
        for layer, lines in enumerate(scene.lines, start=1):
            got = np.zeros((n, n))
            for (start, end), width in zip(lines.segments, lines.widths, strict=True):
                key = int(np.flatnonzero(np.all(np.isclose(xyz[layer - 1], start), axis=1))[0])
                query = int(np.flatnonzero(np.all(np.isclose(xyz[layer], end), axis=1))[0])
                got[query, key] = (width - EDGE_WIDTHS[0]) / EDGE_WIDTHS[1]
            np.testing.assert_allclose(got, expected.weights[layer - 1], atol=1e-9)
            assert np.all(np.diff(lines.opacities[np.argsort(lines.widths)]) >= 0)
            kept_total += got.sum()
        # rows sum to 1, so the total mass is layers × n
        assert kept_total / (layers * n) == pytest.approx(expected.mass_kept)
        assert scene.facts.top_k == k and scene.facts.third_axis == "pc1"
        assert scene.facts.mass_kept == pytest.approx(kept_total / (layers * n))
        assert scene.notes == flow_notes(scene.facts)


def test_flow_markers_grow_with_rollout_and_tokens_label_layer_zero():
    trace = make_trace(n=7)
    relevance = np.array([0.4, 0.05, 0.2, 0.0, 0.15, 0.1, 0.1])
    scene = flow_scene(trace, rollout_row=relevance)
    sizes = scene.points.sizes[:7]
    order = np.argsort(relevance, kind="stable")
    assert np.all(np.diff(sizes[order]) >= 0)
    assert sizes[0] == sizes.max() and sizes[3] == sizes.min() and sizes[5] == sizes[6]
    assert np.all(np.diff(relevance[order])[np.diff(sizes[order]) == 0] == 0)  # ties only where r ties
    rows = [t.text for t in scene.texts if t.text == "input" or t.text.startswith("after layer ")]
    assert rows == ["input"] + [f"after layer {layer}" for layer in range(trace.layers)]
    token_texts = [t for t in scene.texts if t.text not in rows]
    assert [t.text for t in token_texts] == trace.tokens
    np.testing.assert_allclose([t.xyz[0] for t in token_texts], np.arange(7))
    assert all(t.xyz[1] < 0 for t in token_texts)  # below layer 0
    with pytest.raises(ValueError, match="rollout row has shape"):
        flow_scene(trace, rollout_row=relevance[:3])
    with pytest.raises(ValueError, match="choose one of pc1, flat"):
        flow_scene(trace, rollout_row=relevance, third_axis="pc7")


def test_flow_depth_is_each_layers_first_component_with_chained_signs():
    rng = np.random.default_rng(5)
    n, d = 8, 6
    planted = np.array([3.0, -1.0, 0.5, 2.0, -2.5, 1.0, -0.5, 9.0])  # the last token is special, far out
    direction = rng.standard_normal(d)
    layer0 = np.outer(planted, direction) + 0.01 * rng.standard_normal((n, d))
    hidden = np.stack([layer0, -5.0 * layer0, 2.0 * layer0 + 1.0])  # flipped and rescaled copies
    special = np.zeros(n, dtype=bool)
    special[-1] = True
    z = hidden_depth(hidden, special)
    content = planted[:-1] - planted[:-1].mean()
    expected = content / np.abs(content).max()
    sign = np.sign(z[0, 0] * expected[0])
    for layer in range(3):
        np.testing.assert_allclose(z[layer, :-1], sign * expected, atol=0.02)
    assert np.all(np.abs(z[:, -1]) == 1.5)  # the special token is clipped
    flat = flow_scene(make_trace(), rollout_row=np.ones(9), third_axis="flat")
    assert np.all(flat.points.xyz[:, 2] == 0)


def test_a_flat_lattice_draws_what_a_traces_flat_flow_draws():
    """The narrow input (tokens and attention, no hidden states) gives the flat scene of the trace
    it was cut from, float64 attention read as the trace's float32; a wrong shape names both sizes."""
    trace = make_trace()
    relevance = np.linspace(0.1, 1.0, 9)
    want = flow_scene(trace, rollout_row=relevance, third_axis="flat")
    lattice = Lattice("t", list(trace.tokens), trace.attentions.astype(np.float64))
    got = lattice_scene(lattice, rollout_row=relevance)
    np.testing.assert_array_equal(got.points.xyz, want.points.xyz)
    assert got.points.labels == want.points.labels and got.facts == want.facts
    for a, b in zip(got.lines, want.lines, strict=True):
        np.testing.assert_array_equal(a.segments, b.segments)
        np.testing.assert_array_equal(a.widths, b.widths)
    with pytest.raises(ValueError, match=r"attentions must be \[L, H, 8, 8\], got \[3, 2, 9, 9\]"):
        Lattice("t", list(trace.tokens)[:8], trace.attentions)


def test_trajectory_vertices_are_the_pca_projection_of_every_layers_states():
    """Independent reference: numpy's SVD of the content tokens' states at all layers, stacked."""
    trace = make_trace(n=9, layers=3, d=7, seed=4)
    scene = trajectory_scene(trace)
    hidden = np.asarray(trace.hidden, dtype=np.float64)  # [4, 9, 7]
    content = hidden[:, ~trace.special].reshape(-1, 7)
    mean = content.mean(axis=0)
    _, singular, vt = np.linalg.svd(content - mean, full_matrices=False)
    expected = (hidden - mean) @ vt[:3].T  # [4, 9, 3], up to the sign of each axis
    signs = np.sign(np.sum(expected * np.asarray(scene.points.xyz).reshape(4, 9, 3), axis=(0, 1)))
    expected = expected * signs
    np.testing.assert_allclose(scene.points.xyz, expected.reshape(-1, 3), atol=1e-9)
    # one polyline per token: the line set of layer l - 1 (counted from 0) joins each token's
    # state l - 1 to its state l
    assert [lines.name for lines in scene.lines] == ["layer 0", "layer 1", "layer 2"]
    for layer, lines in enumerate(scene.lines, start=1):
        np.testing.assert_allclose(lines.segments[:, 0], expected[layer - 1], atol=1e-9)
        np.testing.assert_allclose(lines.segments[:, 1], expected[layer], atol=1e-9)
    shares = singular[:3] ** 2 / np.sum(singular**2)
    assert scene.axis_labels == tuple(f"PC{i + 1} ({v:.1%})" for i, v in enumerate(shares))
    np.testing.assert_allclose(scene.facts.variance, shares, atol=1e-12)
    norms = np.linalg.norm(hidden[:, ~trace.special], axis=-1).mean(axis=1)  # content tokens, per layer
    np.testing.assert_allclose(scene.facts.norms, (norms[0], norms[-1]), rtol=1e-12)
    assert scene.facts.fitted_on_content and scene.facts.layers == 3
    assert scene.notes == trajectory_notes(scene.facts)
    # colours run from light (embeddings) to dark (last layer), and tokens are labelled at layer 0
    light = [sum(lines.color) for lines in scene.lines]
    assert light == sorted(light, reverse=True)
    assert [t.text for t in scene.texts] == trace.tokens
    np.testing.assert_allclose([t.xyz for t in scene.texts], expected[0], atol=1e-9)
    data = to_json(scene)
    assert data["kind"] == "hidden_trajectories" and len(data["lines"]) == 3


# -- camera ----------------------------------------------------------------------------------------


def test_same_scene_same_camera():
    _, _, preds, space = linear_case()
    a, b = scene_for(space, preds).camera, scene_for(space, preds).camera
    for name in ("position", "focal_point", "up"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.view_angle == b.view_angle


@pytest.mark.parametrize(
    "bounds",
    [
        (0, 1, 0, 1, 0, 1),
        (-30, 5, 2, 3, -1, 0.5),  # long and flat
        (0, 0.2, -8, 12, 100, 101),  # tall, far from the origin
        (5, 6, 5, 6, -40, 40),  # deep
    ],
)
@pytest.mark.parametrize("view", [{}, {"direction": (0.18, 0.3, 1.0), "up": (0, 1, 0)}])
def test_camera_sees_every_corner_of_the_bounds_and_fills_the_frame(bounds, view):
    camera = camera_for(bounds, **view)
    size = (160, 120)
    pixels, depth = project(camera, box_corners(bounds), size)
    assert np.all(depth > 0)
    assert np.all((pixels >= 0) & (pixels <= size))
    span = (pixels.max(axis=0) - pixels.min(axis=0)) / size
    assert span.max() > 0.8  # framed, not lost in the distance
    centre = (pixels.max(axis=0) + pixels.min(axis=0)) / 2 / size
    np.testing.assert_allclose(centre, 0.5, atol=0.05)
    assert camera_for(bounds, **view).position.tolist() == camera.position.tolist()


def asymmetric_scene(**kwargs):
    """Three points of three colours at distinct corners, one ringed, one highlighted, and a triangle."""
    xyz = np.array([[0.0, 0.0, 0.0], [4.0, 0.2, 0.3], [0.5, 3.0, 2.0]])
    points = Points(
        xyz=xyz,
        colors=np.array([class_color(0), class_color(1), class_color(2)]),
        sizes=np.array([0.8, 0.6, 0.7]),
        labels=["a", "b", "c"],
        outline=np.array([False, True, False]),
        highlight=2,
    )
    triangle = Mesh(
        "tri",
        vertices=[[3.5, 2.5, 0.0], [4.5, 3.0, 0.0], [3.8, 3.5, 1.5]],
        triangles=[[0, 1, 2]],
        color=class_color(3),
        opacity=1.0,
    )
    return Scene(kind="decision_space", title="test", points=points, meshes=[triangle], frame=False, **kwargs)


def test_our_projection_is_vtks():
    scene = asymmetric_scene()
    plotter = to_pyvista(scene, size=(160, 120))
    try:
        plotter.render()
        renderer = plotter.renderer
        corners = box_corners(scene.bounds)
        ours, _ = project(scene.camera, corners, (160, 120))
        for corner, (col, row) in zip(corners, ours, strict=True):
            renderer.SetWorldPoint(*corner, 1.0)
            renderer.WorldToDisplay()
            x, y, _ = renderer.GetDisplayPoint()
            assert x == pytest.approx(col, abs=0.01)
            assert 120 - y == pytest.approx(row, abs=0.01)  # VTK counts rows from the bottom
    finally:
        plotter.close()


# -- pixels ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_point_colours_sit_where_the_camera_projects_them(tmp_path, theme):
    scene = asymmetric_scene()
    size = (160, 120)
    image = render(scene, tmp_path / "scene.png", size=size, theme=theme)
    assert image.shape == (120, 160, 3)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "scene.png").convert("RGB")), image)
    pixels, depth = project(scene.camera, scene.points.xyz, size)
    tan = np.tan(np.radians(scene.camera.view_angle) / 2)
    diameter_px = scene.points.sizes / (2 * depth * tan) * size[1]
    assert diameter_px.min() > 8  # big enough to probe inside and outside each disc
    for i, ((col, row), d) in enumerate(zip(pixels, diameter_px, strict=True)):
        want = np.array(class_color(i))
        for dc, dr in [(0, 0), (0.3 * d, 0), (0, -0.3 * d), (-0.25 * d, 0.2 * d)]:
            got = image[int(row + dr), int(col + dc)].astype(int)
            assert np.abs(got - want).max() <= 2, (i, dc, dr, got, want)
    # the ringed point (1) has the outline colour just outside its disc; the others have background
    background, ring = hex_to_rgb(BACKGROUND[theme]), hex_to_rgb(FOREGROUND[theme])
    (c1, r1), d1 = pixels[1], diameter_px[1]
    assert np.abs(image[int(r1), int(c1 + 0.62 * d1)].astype(int) - ring).max() <= 2
    (c0, r0), d0 = pixels[0], diameter_px[0]
    assert np.abs(image[int(r0), int(c0 - 0.7 * d0)].astype(int) - background).max() <= 2
    # the highlighted point (2): a gap of background, then a ring, around its disc
    (c2, r2), d2 = pixels[2], diameter_px[2]
    assert np.abs(image[int(r2 + 0.65 * d2), int(c2)].astype(int) - background).max() <= 2
    assert np.abs(image[int(r2 + 0.92 * d2), int(c2)].astype(int) - ring).max() <= 2
    # the opaque triangle is lit, but its hue is vermillion: red over green over blue
    ct, rt = project(scene.camera, scene.meshes[0].vertices.mean(axis=0), size)[0][0]
    r, g, b = image[int(rt), int(ct)].astype(int)
    assert r > g > b
    assert tuple(image[1, 1]) == background


def test_other_themes_fall_back_to_their_parent_then_light(tmp_path, monkeypatch):
    from attnreport.scenes import palette

    assert palette.scene_theme("dark") == "dark" and palette.scene_theme("no-such-theme") == "light"
    parents = {"night-owl": "midnight", "midnight": "dark", "loop": "loop2", "loop2": "loop"}
    monkeypatch.setattr(palette, "_parent", lambda name: parents.get(name, ""))
    assert palette.scene_theme("night-owl") == "dark"  # followed up the chain
    assert palette.scene_theme("loop") == "light"  # a cycle ends in light
    scene = asymmetric_scene()
    light = render(scene, tmp_path / "light.png", size=(160, 120), theme="light")
    other = render(scene, tmp_path / "other.png", size=(160, 120), theme="no-such-theme")
    np.testing.assert_array_equal(light, other)
    dark = render(scene, tmp_path / "dark.png", size=(160, 120), theme="night-owl")
    assert tuple(dark[0, 0]) == hex_to_rgb(BACKGROUND["dark"])


def test_renders_are_repeatable_and_webp_opens(tmp_path):
    _, _, preds, space = linear_case(n=40)
    scene = scene_for(space, preds, highlight=2)
    render(scene, tmp_path / "a.png", size=(160, 120))
    render(scene, tmp_path / "b.png", size=(160, 120))
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    render(scene, tmp_path / "a.webp", size=(160, 120), theme="dark")
    with Image.open(tmp_path / "a.webp") as image:
        assert image.format == "WEBP" and image.size == (160, 120)
    with pytest.raises(ValueError, match=r"\.png, \.webp"):
        render(scene, tmp_path / "a.jpg")


# -- files -----------------------------------------------------------------------------------------


def test_export_glb_is_binary_gltf_2_with_the_meshes(tmp_path):
    _, _, preds, space = linear_case(n=40)
    truth = [LABELS[p] for p in preds]
    truth[0] = LABELS[(preds[0] + 1) % 3]
    scene = scene_for(space, preds, truth=truth)
    path = export_glb(scene, tmp_path / "scene.glb")
    data = path.read_bytes()
    assert data[:4] == b"glTF" and int.from_bytes(data[4:8], "little") == 2
    gltf, blob = unpack_glb(data)
    assert gltf["asset"]["version"] == "2.0"
    names = [mesh["name"] for mesh in gltf["meshes"]]
    assert names == ["points", "outlines", *[mesh.name for mesh in scene.meshes]]
    assert gltf["buffers"] == [{"byteLength": len(blob)}]
    for view in gltf["bufferViews"]:
        assert view["buffer"] == 0 and view["byteOffset"] + view["byteLength"] <= len(blob)
    surface = gltf["meshes"][names.index(scene.meshes[0].name)]["primitives"][0]
    triangles = gltf["accessors"][surface["indices"]]["count"] // 3
    assert triangles == len(scene.meshes[0].triangles)
    assert gltf["materials"][surface["material"]]["alphaMode"] == "BLEND"
    # an independent reader (VTK's glTF reader) loads the packed file: same parts, same triangles
    leaves, stack = [], [pv.read(path)]
    while stack:
        block = stack.pop()
        if isinstance(block, pv.MultiBlock):
            stack.extend(block[i] for i in reversed(range(block.n_blocks)))
        elif block is not None:
            leaves.append(block.n_cells)
    assert leaves[2:] == [len(mesh.triangles) for mesh in scene.meshes]
    flow = export_glb(flow_scene(make_trace(), rollout_row=np.ones(9)), tmp_path / "flow.glb")
    gltf, _ = unpack_glb(flow.read_bytes())
    assert [mesh["name"] for mesh in gltf["meshes"]] == ["points", "layer 0", "layer 1", "layer 2"]


def test_to_json_is_deterministic_plain_and_counts_match():
    _, _, preds, space = linear_case()
    scene = scene_for(space, preds, highlight=7)
    data = to_json(scene)
    again = to_json(scene_for(space, preds, highlight=7))
    text = json.dumps(data, allow_nan=False)
    assert text == json.dumps(again, allow_nan=False)
    assert list(data) == ["kind", "title", "axes", "camera", "points", "meshes", "lines", "texts", "notes"]
    n = len(scene.points)
    p = data["points"]
    assert len(p["xyz"]) == 3 * n and len(p["color"]) == 3 * n
    assert len(p["size"]) == len(p["label"]) == len(p["link"]) == len(p["outline"]) == n
    assert p["highlight"] == 7 and set(p["outline"]) <= {0, 1}
    assert all(isinstance(c, int) and 0 <= c <= 255 for c in p["color"])
    assert len(data["meshes"]) == len(scene.meshes) and data["lines"] == [] and data["texts"] == []
    for mesh, source in zip(data["meshes"], scene.meshes, strict=True):
        assert len(mesh["vertices"]) == 3 * len(source.vertices)
        assert len(mesh["triangles"]) == 3 * len(source.triangles)
    floats = [*p["xyz"], *p["size"], *data["camera"]["position"], *data["axes"]["bounds"]]
    assert all(re.fullmatch(r"-?\d+(\.\d{1,4})?(e-?\d+)?", repr(v)) for v in floats)
    flow = to_json(flow_scene(make_trace(), rollout_row=np.ones(9), top_k=2))
    assert flow["kind"] == "attention_flow" and len(flow["lines"]) == 3
    assert all(len(lines["segments"]) == 6 * len(lines["width"]) for lines in flow["lines"])
    assert json.loads(json.dumps(flow)) == flow


def test_json_grows_linearly_with_the_points():
    sizes = []
    for n in (500, 2000):
        _, _, preds, space = linear_case(n=n, seed=4)
        sizes.append(len(json.dumps(to_json(scene_for(space, preds))["points"])))
    assert 3.6 < sizes[1] / sizes[0] < 4.4


def test_scene_validation_names_the_shapes():
    with pytest.raises(ValueError, match=r"colors must be \[2, 3\] for 2 points"):
        Points(xyz=np.zeros((2, 3)), colors=np.zeros((3, 3)), sizes=np.ones(2), labels=["a", "b"])
    with pytest.raises(ValueError, match="indexes past its 3 vertices"):
        Mesh("m", vertices=np.zeros((3, 3)), triangles=[[0, 1, 3]], color=(1, 2, 3))
    with pytest.raises(ValueError, match="choose one of decision_space, attention_flow"):
        Scene(kind="sphere", title="")


# -- pyvista stays lazy ----------------------------------------------------------------------------

NO_PYVISTA = textwrap.dedent(
    """
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("pyvista", "vtk", "vtkmodules"):
                raise ImportError(f"{name} is blocked in this test")
    sys.meta_path.insert(0, Block())
    import numpy as np
    import attnreport.scenes.stage
    from attnreport.core.errors import BuildError
    from attnreport.core.trace import Trace
    from attnreport.scenes import flow_scene, to_json, trajectory_scene
    from attnreport.scenes.rendering import load_pyvista
    rng = np.random.default_rng(0)
    att = rng.dirichlet(np.ones(5), size=(2, 2, 5))
    trace = Trace(id="t", text="", tokens=list("abcde"), offsets=np.zeros((5, 2)),
                  special=np.zeros(5, dtype=bool), attentions=att, hidden=rng.standard_normal((3, 5, 4)))
    flow, paths = to_json(flow_scene(trace, rollout_row=np.ones(5))), to_json(trajectory_scene(trace))
    assert len(flow["lines"]) == len(paths["lines"]) == 2
    try:
        load_pyvista()
    except BuildError as error:
        assert "pip install pyvista" in str(error), error
    else:
        raise AssertionError("load_pyvista imported a blocked pyvista")
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"pyvista", "vtk", "vtkmodules"})
    assert not loaded, loaded
    """
)


def test_scenes_build_and_convert_to_json_without_pyvista():
    """The geometry, the flow and trajectory builders and the viewer's JSON import no pyvista;
    the loader turns its absence into a `BuildError` with the install line."""
    result = subprocess.run(
        [sys.executable, "-c", NO_PYVISTA],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def crowded_framed_scene(**kwargs) -> Scene:
    """A framed scene with long axis names and a row of texts closer together than they are wide."""
    from attnreport.scenes.geometry import Text

    base = asymmetric_scene()
    texts = [Text(xyz=[0.2 * i, 0.0, 0.0], text=f"token{i:02d}") for i in range(20)]
    fields = {"texts": texts, "axis_labels": ("token position", "layer", "hidden-state PC1"), **kwargs}
    return dataclasses.replace(base, frame=True, camera=None, **fields)


@pytest.mark.parametrize("size", [(480, 360), (800, 600)])
def test_still_labels_lie_inside_the_image_and_never_overlap(tmp_path, size):
    """Rendered by VTK, the labels' ink lies inside the boxes the layout gave them, every box inside
    the image and clear of the others: nothing clipped ("idden-state PC1"), nothing on top of
    another, no bare "x, y, z" corner; the crowded texts that do not fit are left out."""
    from attnreport.scenes.rendering import label_layout

    scene = crowded_framed_scene()
    placed = label_layout(scene, size)
    kinds = [p.label.kind for p in placed]
    texts = [p.label.text for p in placed]
    assert kinds.count("axis") == 3 and set(scene.axis_labels) <= set(texts)
    shown = [t for t in texts if t.startswith("token")]
    assert "token00" in shown and 3 <= len(shown) < 20
    assert not any(t.count(",") == 2 for t in texts)
    width, height = size
    for i, a in enumerate(placed):
        x0, y0, x1, y1 = a.box
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, a
        for b in placed[i + 1 :]:
            u0, v0, u1, v1 = b.box
            assert x1 <= u0 or u1 <= x0 or y1 <= v0 or v1 <= y0, (a, b)
    with_labels = render(scene, tmp_path / "labels.png", size=size).astype(int)
    bare = dataclasses.replace(scene, texts=[], axis_labels=("", "", ""))
    bare.camera = scene.camera
    without = render(bare, tmp_path / "bare.png", size=size).astype(int)
    ink = np.abs(with_labels - without).max(axis=-1) > 40
    # the bare frame keeps its ranges (from the bounds), laid out without the other labels
    bare_boxes = {p.box for p in label_layout(bare, size)}
    inside = np.zeros_like(ink)
    for p in [*placed, *label_layout(bare, size)]:
        x0, y0, x1, y1 = p.box
        inside[max(int(y0) - 1, 0) : int(np.ceil(y1)) + 1, max(int(x0) - 1, 0) : int(np.ceil(x1)) + 1] = True
    for p in placed:
        if p.box not in bare_boxes:  # drawn where the layout says
            x0, y0, x1, y1 = p.box
            assert ink[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))].any(), p
    assert ink.sum() > 200 and not (ink & ~inside).any()  # no ink outside the boxes
