"""The geometry of a 3D scene in plain numpy: `Points`, `Mesh`, `LineSet`, `Text` and the
`Scene` that holds them with its bounds and fixed camera.

This is the data every output reads (the viewer's JSON in `viewer_data`, images and glTF in
`rendering`), kept apart from them so that scenes can be built, validated and tested without
pyvista, and so each output can change without touching the others. The builders (`decision`,
`flow`, `trajectory`) make these objects from analysis results; validation happens here, in
``__post_init__``, with messages that name the shapes. The camera is part of the scene
(`camera_for` on its bounds), so the image, the download and the viewer's first frame agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnreport.scenes.camera import Camera, camera_for

KINDS = ("decision_space", "attention_flow", "hidden_trajectories")

#: where each kind of scene is looked at from (focal point to camera) and which way is up
VIEWS = {
    "decision_space": {"direction": (1.0, -1.4, 0.9), "up": (0.0, 0.0, 1.0)},
    "attention_flow": {"direction": (0.2, 0.22, 1.0), "up": (0.0, 1.0, 0.0)},
    "hidden_trajectories": {"direction": (1.0, -1.4, 0.9), "up": (0.0, 0.0, 1.0)},
}

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
    labels in images (the JSON always carries the labels). ``notes`` are sentences for the reader;
    ``facts`` holds what they state as data (the builder's own frozen dataclass: `DecisionFacts`,
    `FlowFacts`, `TrajectoryFacts`), for code and tests; the viewer's JSON has only the notes."""

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
    facts: object | None = None

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
