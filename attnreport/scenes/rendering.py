"""Drawing a `Scene` with PyVista: still images (`render`, PNG or WebP), an off-screen
plotter (`to_pyvista`) and a binary glTF download (`export_glb`).

The one module that draws. pyvista is imported only by `load_pyvista`, called when a scene is
drawn here or a decision surface is computed (`decision`, marching cubes), so a build without
scenes, the geometry and the viewer's JSON never load VTK.

Renders are repeatable: no anti-aliasing, no random state, the same bytes for the same scene on
the same machine. Points are drawn as flat discs of their exact colour (``size`` is the diameter
in scene units), so colours match the 2D figures; an outlined point gets a ring in the theme's
text colour around the disc, the highlighted one a wider ring set off by a gap. Meshes are lit
(by white lights) and translucent, composited by depth peeling; line sets are tubes whose
diameter is the segment's width. Text labels and the axes frame appear in images only, not in
the glb; the labels are laid out as the browser viewer lays them out (`labels`): inside the image,
none over another, the axis names past each axis's end and its range at its middle.

Off-screen rendering needs no display: on Linux without one, `render` asks VTK for its EGL
window (``VTK_DEFAULT_OPENGL_WINDOW``, unless already set), which skips a noisy X11 attempt.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np

from attnreport.core.errors import BuildError
from attnreport.scenes.camera import box_corners, project
from attnreport.scenes.geometry import Scene
from attnreport.scenes.glb import pack_glb
from attnreport.scenes.labels import Label, Placed, lay_out
from attnreport.scenes.palette import BACKGROUND, FOREGROUND, MUTED, hex_to_rgb, scene_theme

IMAGE_FORMATS = {".png": "PNG", ".webp": "WEBP"}
WEBP_QUALITY = 80

#: rings as diameters in multiples of the point's diameter: the outline ring of a flagged point
#: runs from 1 to 1.35; the highlight is a ring from 1.6 to 2.1, set off by a gap of background
OUTLINE_RING = (1.0, 1.35)
HIGHLIGHT_RING = (1.6, 2.1)


def load_pyvista() -> ModuleType:
    """The ``pyvista`` module, imported on first use; a `BuildError` with the install line when
    it is missing. Every use of pyvista in `attnreport.scenes` goes through here."""
    try:
        import pyvista
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise BuildError("3D scenes need PyVista: pip install pyvista pillow") from error
    return pyvista


def _prefer_egl() -> None:
    """On a Linux machine without a display, VTK tries X first and logs a warning before falling
    back to EGL; asking for EGL directly is quieter. Only when nothing else was asked for."""
    if (
        sys.platform.startswith("linux")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
        and "VTK_DEFAULT_OPENGL_WINDOW" not in os.environ
    ):
        try:
            from vtkmodules.vtkRenderingOpenGL2 import vtkEGLRenderWindow  # noqa: F401
        except ImportError:  # a VTK build without EGL: leave the choice to VTK
            return
        os.environ["VTK_DEFAULT_OPENGL_WINDOW"] = "vtkEGLRenderWindow"


def _unit(rgb) -> tuple[float, float, float]:
    return tuple(c / 255 for c in rgb)  # type: ignore[return-value]


def _splat_shader(bands: list[tuple[float, tuple[float, float, float]]]) -> str:
    """Flat disc splats for VTK's point-Gaussian mapper (radius 1 in splat units). ``bands`` are
    ``(inner radius, colour)``: outside its inner radius a band paints over the point's colour."""
    code = (
        "//VTK::Color::Impl\n"
        "float dist2 = dot(offsetVCVSOutput.xy, offsetVCVSOutput.xy);\n"
        "if (dist2 > 1.0) { discard; }\n"
    )
    chain = []
    for inner, (r, g, b) in sorted(bands, reverse=True):
        chain.append(
            f"if (dist2 > {inner * inner:.6f}) {{ ambientColor = vec3(0.0); "
            f"diffuseColor = vec3({r:.6f}, {g:.6f}, {b:.6f}); }}"
        )
    return code + " else ".join(chain) + ("\n" if chain else "")


def _ring_bands(outlined: bool, highlighted: bool, theme: str) -> tuple[float, list]:
    """The splat's diameter (in point diameters) and its bands, radii as fractions of the splat."""
    rim, gap = _unit(hex_to_rgb(FOREGROUND[theme])), _unit(hex_to_rgb(BACKGROUND[theme]))
    if highlighted:
        outer = HIGHLIGHT_RING[1]
        bands = [(HIGHLIGHT_RING[0] / outer, rim)]  # the highlight ring, then a gap down to the disc
        if outlined:  # ... or down to the outline ring, which stays
            bands += [(OUTLINE_RING[1] / outer, gap), (OUTLINE_RING[0] / outer, rim)]
        else:
            bands += [(OUTLINE_RING[0] / outer, gap)]
        return outer, bands
    if outlined:
        return OUTLINE_RING[1], [(OUTLINE_RING[0] / OUTLINE_RING[1], rim)]
    return 1.0, []


def _add_points(plotter, pv, scene: Scene, theme: str, *, export: bool) -> list[str]:
    p = scene.points
    if not len(p):
        return []
    highlight = np.zeros(len(p), dtype=bool)
    if p.highlight is not None:
        highlight[p.highlight] = True
    outlined = p.outline & ~highlight
    names = []
    if export:
        # glTF viewers draw points one pixel wide: markers become small solids, rings flat annuli
        cloud = pv.PolyData(p.xyz)
        cloud.point_data["rgb"] = p.colors
        cloud.point_data["size"] = p.sizes
        solid = pv.Icosphere(radius=0.5, nsub=0)
        markers = cloud.glyph(geom=solid, scale="size", orient=False, factor=1.0)
        plotter.add_mesh(markers, scalars="rgb", rgb=True)
        names.append("points")
        _, _, back = scene.camera.basis()
        rim = _unit(hex_to_rgb(FOREGROUND[theme]))
        for mask, (inner, outer), name in (
            (p.outline, OUTLINE_RING, "outlines"),
            (highlight, HIGHLIGHT_RING, "highlight"),
        ):
            if mask.any():
                ring = pv.Disc(inner=inner / 2 * 1.05, outer=outer / 2, normal=back, c_res=24)
                cloud = pv.PolyData(p.xyz[mask])
                cloud.point_data["size"] = p.sizes[mask]
                glyphs = cloud.glyph(geom=ring, scale="size", orient=False, factor=1.0)
                plotter.add_mesh(glyphs, color=rim, lighting=False)
                names.append(name)
        return names
    groups = [(~outlined & ~highlight, False, False, "points"), (outlined, True, False, "outlines")]
    if p.highlight is not None:
        groups.append((highlight, bool(p.outline[p.highlight]), True, "highlight"))
    for mask, is_outlined, is_highlighted, name in groups:
        if not mask.any():
            continue
        scale, bands = _ring_bands(is_outlined, is_highlighted, theme)
        cloud = pv.PolyData(p.xyz[mask])
        cloud.point_data["rgb"] = p.colors[mask]
        cloud.point_data["size"] = p.sizes[mask] * scale
        actor = plotter.add_mesh(
            cloud, scalars="rgb", rgb=True, style="points_gaussian", emissive=False, lighting=False
        )
        actor.prop.opacity = 1.0
        actor.mapper.SetScaleArray("size")
        actor.mapper.SetScaleFactor(0.5)  # the splat's radius is scale × value: value is the diameter
        actor.mapper.SetSplatShaderCode(_splat_shader(bands))
        names.append(name)
    return names


def _add_meshes(plotter, pv, scene: Scene) -> list[str]:
    names = []
    for mesh in scene.meshes:
        if not len(mesh.triangles):
            continue
        faces = np.column_stack([np.full(len(mesh.triangles), 3), mesh.triangles]).ravel()
        poly = pv.PolyData(mesh.vertices, faces=faces)
        look = {"ambient": 0.25, "specular": 0.1, "smooth_shading": True}
        plotter.add_mesh(poly, color=_unit(mesh.color), opacity=mesh.opacity, **look)
        names.append(mesh.name)
    return names


def _add_lines(plotter, pv, scene: Scene, *, export: bool) -> list[str]:
    names = []
    for lines in scene.lines:
        s = len(lines.segments)
        if not s:
            continue
        cells = np.column_stack([np.full(s, 2), np.arange(0, 2 * s, 2), np.arange(1, 2 * s, 2)]).ravel()
        poly = pv.PolyData(lines.segments.reshape(-1, 3), lines=cells)
        poly.point_data["radius"] = np.repeat(lines.widths / 2, 2)
        rgba = np.empty((s, 4), dtype=np.uint8)
        rgba[:, :3] = lines.color
        rgba[:, 3] = np.round(lines.opacities * 255).astype(np.uint8)
        poly.point_data["rgba"] = np.repeat(rgba, 2, axis=0)
        tubes = poly.tube(scalars="radius", absolute=True, n_sides=6 if export else 8, capping=False)
        plotter.add_mesh(tubes, scalars="rgba", rgba=True, ambient=0.3)
        names.append(lines.name)
    return names


def _font_size(size: tuple[int, int]) -> int:
    return max(8, round(size[1] / 60))


def _text_property(font: int, rgb):
    from vtkmodules.vtkRenderingCore import vtkTextProperty

    prop = vtkTextProperty()
    prop.SetFontFamilyToArial()
    prop.SetFontSize(font)
    prop.SetColor(*rgb)
    prop.SetJustificationToLeft()
    prop.SetVerticalJustificationToBottom()
    return prop


def _axis_ends(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(scene.bounds, dtype=np.float64)
    return b[0::2], b[1::2]


def label_layout(scene: Scene, size: tuple[int, int] = (960, 720)) -> list[Placed]:
    """The labels a still image of `scene` shows, and where: the axis names (past each axis's far
    end) and ranges (at its middle) of a framed scene, and the scene's texts, laid out by
    `labels.lay_out` with their glyphs measured by VTK's own text renderer."""
    import vtkmodules.vtkRenderingFreeType  # noqa: F401 - registers the FreeType text renderer
    from vtkmodules.vtkRenderingCore import vtkTextRenderer

    font, measure = _font_size(size), vtkTextRenderer()
    prop = _text_property(font, (0.0, 0.0, 0.0))

    def box(text: str) -> tuple[float, float]:
        bbox = [0, 0, 0, 0]
        if not text or not measure.GetBoundingBox(prop, text, bbox, 72):
            return (0.0, 0.0)
        return (float(bbox[1] - bbox[0] + 1), float(bbox[3] - bbox[2] + 1))

    wanted: list[tuple[str, np.ndarray, str, str]] = []
    ranges: list[tuple[str, np.ndarray, str, str]] = []
    if scene.frame:
        lo, hi = _axis_ends(scene)
        reach = 0.08 * float(np.max(hi - lo))
        for axis, name in enumerate(scene.axis_labels):
            beyond, middle = lo.copy(), lo.copy()
            beyond[axis] = hi[axis] + reach
            middle[axis] = (lo[axis] + hi[axis]) / 2
            wanted.append((name, beyond, "centred", "axis"))
            ranges.append((f"{lo[axis]:.3g} to {hi[axis]:.3g}", middle, "centred", "range"))
    wanted += [(t.text, np.asarray(t.xyz, dtype=np.float64), "beside", "text") for t in scene.texts]
    wanted += ranges
    if not wanted:
        return []
    anchors, depth = project(scene.camera, np.array([xyz for _, xyz, _, _ in wanted]), size)
    labels = [
        Label(text, (float(x), float(y)) if d > 0 else (np.nan, np.nan), box(text), place, kind)
        for (text, _, place, kind), (x, y), d in zip(wanted, anchors, depth, strict=True)
    ]
    return lay_out(labels, size)


def _add_labels(plotter, pv, scene: Scene, theme: str, size: tuple[int, int]) -> None:
    """The frame's axis lines, then every label that fits (`label_layout`) as a screen-space text."""
    from vtkmodules.vtkRenderingCore import vtkTextActor

    if scene.frame:
        lo, hi = _axis_ends(scene)
        ends = []
        for axis in range(3):
            end = lo.copy()
            end[axis] = hi[axis]
            ends += [lo, end]
        axes = pv.PolyData(np.array(ends), lines=np.array([2, 0, 1, 2, 2, 3, 2, 4, 5]))
        plotter.add_mesh(axes, color=MUTED[theme], line_width=1, lighting=False)
    font, height = _font_size(size), size[1]
    ink, muted = _unit(hex_to_rgb(FOREGROUND[theme])), _unit(hex_to_rgb(MUTED[theme]))
    for placed in label_layout(scene, size):
        actor = vtkTextActor()
        actor.SetInput(placed.label.text)
        colour = muted if placed.label.kind == "range" else ink
        actor.GetTextProperty().ShallowCopy(_text_property(font, colour))
        x0, _, _, y1 = placed.box
        actor.SetPosition(x0, height - y1)  # VTK counts rows from the bottom
        plotter.renderer.AddActor(actor)


def _plotter(scene: Scene, theme: str, size: tuple[int, int], *, export: bool):
    theme = scene_theme(theme)
    pv = load_pyvista()
    _prefer_egl()
    look = pv.themes.Theme()
    look.anti_aliasing = None
    look.multi_samples = 0
    look.background = BACKGROUND[theme]
    look.font.color = FOREGROUND[theme]
    # white camera lights: the default light kit tints surfaces warm and cool
    plotter = pv.Plotter(off_screen=True, window_size=list(size), theme=look, lighting="three lights")
    names = _add_points(plotter, pv, scene, theme, export=export)
    names += _add_meshes(plotter, pv, scene)
    names += _add_lines(plotter, pv, scene, export=export)
    if not export:
        _add_labels(plotter, pv, scene, theme, size)
    if scene.meshes:
        # translucent surfaces need depth peeling (4 peels match 16 to within 1/255 in our scenes);
        # translucent tubes alone look the same without it (0.06% of pixels move) at a quarter the time
        plotter.enable_depth_peeling(number_of_peels=4, occlusion_ratio=0.0)
    cam = scene.camera
    plotter.camera_position = [tuple(cam.position), tuple(cam.focal_point), tuple(cam.up)]
    plotter.camera.view_angle = cam.view_angle
    _, _, back = cam.basis()
    depths = (cam.position - box_corners(scene.bounds)) @ back
    plotter.camera.clipping_range = (0.5 * max(float(depths.min()), 1e-6), 2.0 * float(depths.max()))
    return plotter, names


def to_pyvista(scene: Scene, *, theme: str = "light", size: tuple[int, int] = (960, 720)):
    """An off-screen ``pyvista.Plotter`` showing the scene from its camera (close it when done)."""
    plotter, _ = _plotter(scene, theme, size, export=False)
    return plotter


def render(scene: Scene, path, *, size: tuple[int, int] = (960, 720), theme: str = "light") -> np.ndarray:
    """Write the scene as a PNG or WebP image (by ``path``'s suffix) and return the pixels
    ``[height, width, 3]``."""
    path = Path(path)
    fmt = IMAGE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"image {path.name!r}: the suffix must be one of {', '.join(IMAGE_FORMATS)}")
    from PIL import Image

    plotter = to_pyvista(scene, theme=theme, size=size)
    try:
        pixels = np.asarray(plotter.screenshot(None, return_img=True))[..., :3]
    finally:
        plotter.close()
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    image = Image.fromarray(pixels, mode="RGB")
    if fmt == "PNG":
        image.save(path, format="PNG", compress_level=6)
    else:
        # quality 80 at the slowest, best method: a third smaller than 88 / method 4 on our flow
        # scenes, at a PSNR 0.8 dB lower (flat colours and thin lines; no visible change)
        image.save(path, format="WEBP", quality=WEBP_QUALITY, method=6)
    return pixels


def export_glb(scene: Scene, path, *, theme: str = "light") -> Path:
    """Write the scene's geometry (markers, rings, meshes, tubes; no text) as a binary glTF.

    glTF nodes are named after the scene's parts (``points``, ``outlines``, each mesh's and line
    set's name), translucent materials are marked ``BLEND``, and z-up scenes are turned y-up as
    glTF wants.
    """
    path = Path(path)
    plotter, names = _plotter(scene, theme, (64, 48), export=True)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / "scene.gltf"
            z_up = abs(scene.camera.up[2]) > abs(scene.camera.up[1])
            plotter.export_gltf(str(staged), inline_data=True, rotate_scene=z_up, save_normals=True)
            gltf = json.loads(staged.read_text(encoding="utf-8"))
    finally:
        plotter.close()
    meshes = gltf.get("meshes", [])
    if len(meshes) == len(names):
        for mesh, name in zip(meshes, names, strict=True):
            mesh["name"] = name
        for node in gltf.get("nodes", []):
            if "mesh" in node:
                node["name"] = names[node["mesh"]]
    for material in gltf.get("materials", []):
        factor = material.get("pbrMetallicRoughness", {}).get("baseColorFactor", [1, 1, 1, 1])
        if factor[3] < 1:
            material["alphaMode"] = "BLEND"
    for mesh, name in zip(meshes, names, strict=False):
        if any(lines.name == name for lines in scene.lines):  # per-segment opacity in COLOR_0
            for primitive in mesh.get("primitives", []):
                if "material" in primitive:
                    gltf["materials"][primitive["material"]]["alphaMode"] = "BLEND"
    path.write_bytes(pack_glb(gltf))
    return path
