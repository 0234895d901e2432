"""`Scene`: the geometry of a 3D picture in plain numpy, and its three outputs.

A scene is built from analysis results by `decision_scene` or `flow_scene`, then

* `to_json` gives the browser viewer its data (a fixed format, floats rounded to 4 decimals),
* `render` writes a still image (PNG or WebP) through an off-screen PyVista plotter,
* `export_glb` writes a binary glTF to download and open in any 3D viewer.

All three use the same fixed camera (`camera.camera_for` on the scene's bounds), so the
image, the download and the viewer's first frame agree. Renders are repeatable: no
anti-aliasing, no random state, the same bytes for the same scene on the same machine.

Points are drawn as flat discs of their exact colour (``size`` is the diameter in scene
units), so colours match the 2D figures; an outlined point gets a ring in the theme's text
colour around the disc, the highlighted one a wider ring set off by a gap. Meshes are lit (by
white lights) and translucent, composited by depth peeling; line sets are tubes whose diameter
is the segment's width. Text labels and the axes frame appear in images only, not in the glb.

Off-screen rendering needs no display: on Linux without one, `render` asks VTK for its EGL
window (``VTK_DEFAULT_OPENGL_WINDOW``, unless already set), which skips a noisy X11 attempt.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnreport.core.errors import BuildError
from attnreport.scenes.camera import Camera, box_corners, camera_for
from attnreport.scenes.glb import pack_glb
from attnreport.scenes.palette import BACKGROUND, FOREGROUND, MUTED, hex_to_rgb, scene_theme

KINDS = ("decision_space", "attention_flow", "hidden_trajectories")

#: where each kind of scene is looked at from (focal point to camera) and which way is up
VIEWS = {
    "decision_space": {"direction": (1.0, -1.4, 0.9), "up": (0.0, 0.0, 1.0)},
    "attention_flow": {"direction": (0.2, 0.22, 1.0), "up": (0.0, 1.0, 0.0)},
    "hidden_trajectories": {"direction": (1.0, -1.4, 0.9), "up": (0.0, 0.0, 1.0)},
}

IMAGE_FORMATS = {".png": "PNG", ".webp": "WEBP"}
WEBP_QUALITY = 80

#: rings as diameters in multiples of the point's diameter: the outline ring of a flagged point
#: runs from 1 to 1.35; the highlight is a ring from 1.6 to 2.1, set off by a gap of background
OUTLINE_RING = (1.0, 1.35)
HIGHLIGHT_RING = (1.6, 2.1)

#: camera margins: framed scenes leave room for the axis titles outside the bounds
MARGINS = {True: 1.25, False: 1.1}

Color = tuple[int, int, int]


def _color(value, what: str) -> Color:
    rgb = tuple(int(c) for c in value)
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ValueError(f"{what} colour must be 3 integers in 0..255, got {value!r}")
    return rgb  # type: ignore[return-value]


@dataclass
class Points:
    """``N`` markers: ``xyz [N, 3]``, ``colors [N, 3]`` (0-255), ``sizes [N]`` (diameters, scene
    units), a label each (hover text), a link each (or None), ``outline [N]`` flags, and at most
    one highlighted index."""

    xyz: np.ndarray
    colors: np.ndarray
    sizes: np.ndarray
    labels: list[str]
    links: list[str | None] | None = None
    outline: np.ndarray | None = None
    highlight: int | None = None

    def __post_init__(self) -> None:
        self.xyz = np.asarray(self.xyz, dtype=np.float64)
        if self.xyz.size == 0:
            self.xyz = self.xyz.reshape(0, 3)
        if self.xyz.ndim != 2 or self.xyz.shape[1] != 3:
            raise ValueError(f"points xyz must be [N, 3], got {list(self.xyz.shape)}")
        n = len(self.xyz)
        colors = np.asarray(self.colors)
        if colors.shape != (n, 3):
            raise ValueError(f"points colors must be [{n}, 3] for {n} points, got {list(colors.shape)}")
        if n and (colors.min() < 0 or colors.max() > 255):
            raise ValueError("points colors must be integers in 0..255")
        self.colors = colors.astype(np.uint8)
        self.sizes = np.asarray(self.sizes, dtype=np.float64)
        if self.sizes.shape != (n,):
            raise ValueError(f"points sizes must be [{n}] for {n} points, got {list(self.sizes.shape)}")
        if n and not (np.all(np.isfinite(self.sizes)) and self.sizes.min() > 0):
            raise ValueError("points sizes must be positive and finite")
        if len(self.labels) != n:
            raise ValueError(f"{len(self.labels)} point labels for {n} points")
        self.labels = [str(label) for label in self.labels]
        self.links = [None] * n if self.links is None else list(self.links)
        if len(self.links) != n:
            raise ValueError(f"{len(self.links)} point links for {n} points")
        self.outline = np.zeros(n, dtype=bool) if self.outline is None else np.asarray(self.outline, bool)
        if self.outline.shape != (n,):
            raise ValueError(f"points outline must be [{n}] for {n} points, got {list(self.outline.shape)}")
        if self.highlight is not None:
            if not 0 <= int(self.highlight) < n:
                raise ValueError(f"highlight {self.highlight} is not a point index (0..{n - 1})")
            self.highlight = int(self.highlight)

    def __len__(self) -> int:
        return len(self.xyz)

    @classmethod
    def empty(cls) -> Points:
        return cls(xyz=np.zeros((0, 3)), colors=np.zeros((0, 3)), sizes=np.zeros(0), labels=[])


@dataclass
class Mesh:
    """A triangle mesh: ``vertices [V, 3]``, ``triangles [T, 3]`` (vertex indices)."""

    name: str
    vertices: np.ndarray
    triangles: np.ndarray
    color: Color
    opacity: float = 1.0

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64).reshape(-1, 3)
        triangles = np.asarray(self.triangles)
        if triangles.size == 0:
            triangles = triangles.reshape(0, 3)
        if triangles.ndim != 2 or triangles.shape[1] != 3:
            raise ValueError(f"mesh {self.name!r}: triangles must be [T, 3], got {list(triangles.shape)}")
        if triangles.size and (triangles.min() < 0 or triangles.max() >= len(self.vertices)):
            raise ValueError(f"mesh {self.name!r}: a triangle indexes past its {len(self.vertices)} vertices")
        self.triangles = triangles.astype(np.int64)
        self.color = _color(self.color, f"mesh {self.name!r}")
        if not 0 < self.opacity <= 1:
            raise ValueError(f"mesh {self.name!r}: opacity must be in (0, 1], got {self.opacity}")
        self.opacity = float(self.opacity)


@dataclass
class LineSet:
    """``S`` straight segments ``[S, 2, 3]`` of one colour, each with a width (diameter, scene
    units) and an opacity."""

    name: str
    segments: np.ndarray
    widths: np.ndarray
    opacities: np.ndarray
    color: Color

    def __post_init__(self) -> None:
        self.segments = np.asarray(self.segments, dtype=np.float64)
        if self.segments.size == 0:
            self.segments = self.segments.reshape(0, 2, 3)
        if self.segments.ndim != 3 or self.segments.shape[1:] != (2, 3):
            shape = list(self.segments.shape)
            raise ValueError(f"line set {self.name!r}: segments must be [S, 2, 3], got {shape}")
        s = len(self.segments)
        self.widths = np.asarray(self.widths, dtype=np.float64)
        self.opacities = np.asarray(self.opacities, dtype=np.float64)
        for what, values in (("widths", self.widths), ("opacities", self.opacities)):
            if values.shape != (s,):
                raise ValueError(f"line set {self.name!r}: {what} must be [{s}], got {list(values.shape)}")
        if s and (self.widths.min() <= 0 or self.opacities.min() < 0 or self.opacities.max() > 1):
            raise ValueError(f"line set {self.name!r}: widths must be positive, opacities in [0, 1]")
        self.color = _color(self.color, f"line set {self.name!r}")


@dataclass
class Text:
    xyz: np.ndarray
    text: str

    def __post_init__(self) -> None:
        self.xyz = np.asarray(self.xyz, dtype=np.float64).reshape(3)
        self.text = str(self.text)


@dataclass
class Scene:
    """Everything a 3D picture shows. ``bounds`` (``xmin, xmax, ymin, ymax, zmin, zmax``) default
    to the geometry's box with a 4% margin; ``camera`` defaults to `camera_for` the bounds from
    the kind's fixed view (`VIEWS`). ``frame`` draws the bounds as axes with ticks and the axis
    labels in images (the JSON always carries the labels)."""

    kind: str
    title: str
    points: Points = field(default_factory=Points.empty)
    meshes: list[Mesh] = field(default_factory=list)
    lines: list[LineSet] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    axis_labels: tuple[str, str, str] = ("x", "y", "z")
    notes: list[str] = field(default_factory=list)
    bounds: np.ndarray | None = None
    camera: Camera | None = None
    frame: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"scene kind {self.kind!r} is unknown; choose one of {', '.join(KINDS)}")
        if len(self.axis_labels) != 3:
            raise ValueError(f"a scene needs 3 axis labels, got {len(self.axis_labels)}")
        self.axis_labels = tuple(str(label) for label in self.axis_labels)  # type: ignore[assignment]
        self.bounds = geometry_bounds(self) if self.bounds is None else np.asarray(self.bounds, np.float64)
        if self.bounds.shape != (6,) or np.any(self.bounds[1::2] < self.bounds[0::2]):
            raise ValueError(f"scene bounds must be (xmin, xmax, ymin, ymax, zmin, zmax), got {self.bounds}")
        if self.camera is None:
            self.camera = camera_for(self.bounds, **VIEWS[self.kind], margin=MARGINS[bool(self.frame)])


def geometry_bounds(scene: Scene, *, pad: float = 0.04) -> np.ndarray:
    """The box around every point (with its size), vertex, segment (with its width) and text,
    widened on every side by ``pad`` times its largest extent."""
    low, high = [], []
    p = scene.points
    if len(p):
        low.append((p.xyz - p.sizes[:, None] / 2).min(axis=0))
        high.append((p.xyz + p.sizes[:, None] / 2).max(axis=0))
    for mesh in scene.meshes:
        if len(mesh.vertices):
            low.append(mesh.vertices.min(axis=0))
            high.append(mesh.vertices.max(axis=0))
    for lines in scene.lines:
        if len(lines.segments):
            half = np.repeat(lines.widths / 2, 2)[:, None]
            ends = lines.segments.reshape(-1, 3)
            low.append((ends - half).min(axis=0))
            high.append((ends + half).max(axis=0))
    for text in scene.texts:
        low.append(text.xyz)
        high.append(text.xyz)
    if not low:
        return np.array([-1.0, 1.0, -1.0, 1.0, -1.0, 1.0])
    lo, hi = np.min(low, axis=0), np.max(high, axis=0)
    margin = pad * max(float((hi - lo).max()), 1e-9)
    return np.stack([lo - margin, hi + margin], axis=1).reshape(6)


# -- the browser viewer's data -------------------------------------------------------------------


def _floats(values) -> list[float]:
    # float64 first, so float32 inputs round to short decimals; "+ 0.0" turns -0.0 into 0.0
    return (np.round(np.asarray(values, dtype=np.float64).ravel(), 4) + 0.0).tolist()


def to_json(scene: Scene) -> dict:
    """The scene as plain JSON data for the browser viewer (see the module docstring of
    `attnreport.scenes`): flat coordinate lists, floats rounded to 4 decimals, colours as 0-255
    integers, sizes and widths in scene units, lists in the scene's own (deterministic) order."""
    p, cam = scene.points, scene.camera
    return {
        "kind": scene.kind,
        "title": scene.title,
        "axes": {"labels": list(scene.axis_labels), "bounds": _floats(scene.bounds)},
        "camera": {
            "position": _floats(cam.position),
            "target": _floats(cam.focal_point),
            "up": _floats(cam.up),
            "fov": round(cam.view_angle, 4),
        },
        "points": {
            "xyz": _floats(p.xyz),
            "color": p.colors.astype(np.int64).ravel().tolist(),
            "size": _floats(p.sizes),
            "label": list(p.labels),
            "link": list(p.links),
            "outline": p.outline.astype(np.int64).tolist(),
            "highlight": p.highlight,
        },
        "meshes": [
            {
                "name": mesh.name,
                "vertices": _floats(mesh.vertices),
                "triangles": mesh.triangles.ravel().tolist(),
                "color": list(mesh.color),
                "opacity": round(mesh.opacity, 4),
            }
            for mesh in scene.meshes
        ],
        "lines": [
            {
                "name": lines.name,
                "segments": _floats(lines.segments),
                "width": _floats(lines.widths),
                "opacity": _floats(lines.opacities),
                "color": list(lines.color),
            }
            for lines in scene.lines
        ],
        "texts": [{"xyz": _floats(text.xyz), "text": text.text} for text in scene.texts],
        "notes": list(scene.notes),
    }


# -- PyVista: images and glTF --------------------------------------------------------------------


def _pyvista():
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


def _plotter(scene: Scene, theme: str, size: tuple[int, int], *, export: bool):
    theme = scene_theme(theme)
    pv = _pyvista()
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
    font = max(8, round(size[1] / 60))
    if not export and scene.texts:
        plotter.add_point_labels(
            np.array([text.xyz for text in scene.texts]),
            [text.text for text in scene.texts],
            font_size=font,
            text_color=FOREGROUND[theme],
            shape=None,
            show_points=False,
            always_visible=True,
            bold=False,
        )
    if not export and scene.frame:
        plotter.show_bounds(
            bounds=list(scene.bounds),
            xtitle=scene.axis_labels[0],
            ytitle=scene.axis_labels[1],
            ztitle=scene.axis_labels[2],
            color=MUTED[theme],
            font_size=font,
            bold=False,
            location="outer",
            ticks="outside",
            n_xlabels=3,
            n_ylabels=3,
            n_zlabels=3,
            render=False,
        )
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
