"""Drawn scenes kept by their content, like traces and results: a rebuild that changes only a
template or the site's theme copies each scene's files from the cache instead of drawing it.

An entry's key (`scene_key`) is a SHA-256 over everything its files are made from: the scene
object itself, walked field by field (arrays by dtype, shape and bytes; floats exactly, by
their hex form; nested dataclasses by class name and fields), the scene colours of the theme
(`palette.scene_theme`: two site themes drawn in the same colours share entries), the image
size, whether a ``.glb`` is exported, `SCENE_CACHE_VERSION`, the source of the modules that
draw (`DRAWING_MODULES`: an edit there misses by itself) and the versions of PyVista, VTK and
Pillow. A value the walk does not know raises `TypeError`: a scene that grows a new kind of
field must be taught here, never hashed by a guess.

Building a scene can cost more than drawing it (an example's trajectories fit a PCA per layer),
so the per-example scenes are keyed by their builder's inputs instead (`scene_key` with
``builder``: the trace, walked the same way, and the builder's arguments), with the source of
the modules that build them (`BUILDER_MODULES`) in the key too; a hit then builds nothing.

An entry is one file, written atomically (`core.files.atomic_write`), holding a header with
each part's length and SHA-256, then the parts: the still image, the viewer's JSON and the
optional ``.glb``. A read checks every hash, so a damaged or truncated entry is a miss, drawn
again and written over, never served. The layout::

    <cache>/scenes/<first 2 hex of key>/<key>.scene
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from importlib import metadata
from pathlib import Path

import numpy as np

from attnreport.core.files import atomic_write

#: bump when what an entry holds changes in a way the drawing modules' source does not show
#: (the image settings of a dependency, the entry's own layout)
SCENE_CACHE_VERSION = 1

#: the modules whose source decides a scene's files, as paths under the package
DRAWING_MODULES = (
    "scenes/rendering.py",
    "scenes/glb.py",
    "scenes/labels.py",
    "scenes/camera.py",
    "scenes/palette.py",
    "scenes/viewer_data.py",
    "scenes/stage.py",
    "core/jsonsafe.py",
)

#: the modules that build the per-example scenes from a trace (keyed by their inputs): `flow_scene`,
#: `trajectory_scene` and what they import from the package (checked by the tests)
BUILDER_MODULES = (
    "scenes/flow.py",
    "scenes/trajectory.py",
    "scenes/geometry.py",
    "analysis/aggregate.py",
    "analysis/decision.py",
    "analysis/predictions.py",
    "core/trace.py",
    "core/npz.py",
    "core/themes.py",
    "core/resources.py",
    "core/errors.py",
)

#: the libraries that draw and encode: another version may draw other pixels
DRAWING_LIBRARIES = ("pyvista", "vtk", "pillow")

MAGIC = b"attnreport-scene\n"

_environments: dict[tuple[str, ...], str] = {}


def source_hash(modules: tuple[str, ...]) -> str:
    """One hash of `SCENE_CACHE_VERSION`, the source of `modules` (paths under the package) and
    the drawing libraries' versions (read from their metadata: VTK is not imported for it),
    computed once a process."""
    if modules not in _environments:
        digest = hashlib.sha256(f"scene-cache {SCENE_CACHE_VERSION}\n".encode())
        package = Path(__file__).resolve().parent.parent
        for name in modules:
            digest.update(name.encode() + b"\0")
            digest.update((package / name).read_bytes())
        for library in DRAWING_LIBRARIES:
            try:
                version = metadata.version(library)
            except metadata.PackageNotFoundError:
                version = "absent"
            digest.update(f"{library}={version}\n".encode())
        _environments[modules] = digest.hexdigest()
    return _environments[modules]


def _feed(digest, value) -> None:
    """Hash `value` into `digest`, every value tagged with its type so that ``1``, ``1.0``,
    ``"1"`` and ``[1]`` differ."""
    if value is None:
        digest.update(b"N")
    elif isinstance(value, (bool, np.bool_)):
        digest.update(b"B1" if value else b"B0")
    elif isinstance(value, (int, np.integer)):
        digest.update(b"I%d;" % int(value))
    elif isinstance(value, (float, np.floating)):
        digest.update(b"F" + float(value).hex().encode() + b";")
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        digest.update(b"S%d:" % len(data) + data)
    elif isinstance(value, bytes):
        digest.update(b"Y%d:" % len(value) + value)
    elif isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            digest.update(b"O" + repr(value.shape).encode())
            for item in value.ravel().tolist():
                _feed(digest, item)
        else:
            digest.update(b"A" + value.dtype.str.encode() + repr(value.shape).encode())
            digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        digest.update(b"L%d:" % len(value) if isinstance(value, list) else b"T%d:" % len(value))
        for item in value:
            _feed(digest, item)
    elif isinstance(value, dict):
        keys = []
        for key, item in value.items():
            inner = hashlib.sha256()
            _feed(inner, key)
            keys.append((inner.digest(), item))
        digest.update(b"D%d:" % len(keys))
        for key, item in sorted(keys, key=lambda pair: pair[0]):
            digest.update(key)
            _feed(digest, item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        kind = type(value)
        digest.update(b"C" + f"{kind.__module__}.{kind.__qualname__}".encode() + b"{")
        for f in dataclasses.fields(value):
            digest.update(f.name.encode() + b"=")
            _feed(digest, getattr(value, f.name))
        digest.update(b"}")
    else:
        kind = type(value).__name__
        message = f"a scene holds a {kind}, which the scene cache cannot key: teach scenes.cache._feed"
        raise TypeError(message)


def scene_key(scene, *, theme: str, size: tuple[int, int], glb: bool, builder: str | None = None) -> str:
    """The hex SHA-256 that names the files `scene` draws to with these settings. With `builder`
    (a name, such as ``"flow_scene"``), `scene` is instead what that builder makes the scene from,
    and the builders' source is in the key too."""
    from attnreport.scenes.palette import scene_theme

    modules = DRAWING_MODULES if builder is None else DRAWING_MODULES + BUILDER_MODULES
    digest = hashlib.sha256(source_hash(modules).encode())
    _feed(digest, ("theme", scene_theme(theme), "size", tuple(int(s) for s in size), "glb", bool(glb)))
    _feed(digest, ("builder", builder))
    _feed(digest, scene)
    return digest.hexdigest()


def pack_entry(parts: dict[str, bytes]) -> bytes:
    """One entry's bytes: the magic line, a header (its length, then JSON: each part's name,
    length and SHA-256, in order), then the parts."""
    header = json.dumps(
        [[name, len(data), hashlib.sha256(data).hexdigest()] for name, data in parts.items()],
        separators=(",", ":"),
    ).encode()
    return MAGIC + struct.pack("<I", len(header)) + header + b"".join(parts.values())


def unpack_entry(data: bytes) -> dict[str, bytes]:
    """The parts of an entry written by `pack_entry`; `ValueError` when anything is off (a wrong
    magic, a short or long file, a part whose hash differs)."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise ValueError("not a scene cache entry")
    start = len(MAGIC) + 4
    (size,) = struct.unpack("<I", data[len(MAGIC) : start])
    try:
        header = json.loads(data[start : start + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"scene cache entry header unreadable: {error}") from None
    offset, parts = start + size, {}
    for name, length, sha in header:
        part = data[offset : offset + length]
        if len(part) != length or hashlib.sha256(part).hexdigest() != sha:
            raise ValueError(f"scene cache entry part {name!r} is damaged")
        parts[name] = part
        offset += length
    if offset != len(data):
        raise ValueError(f"scene cache entry has {len(data) - offset} bytes past its parts")
    return parts


class SceneCache:
    """Drawn scenes under ``<root>/scenes``: `get` a key's parts (None: absent or damaged),
    `put` them. Counts its hits and misses."""

    def __init__(self, root: Path) -> None:
        self.folder = Path(root) / "scenes"
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.scene"

    def get(self, key: str) -> dict[str, bytes] | None:
        try:
            data = self.path(key).read_bytes()
        except OSError:
            self.misses += 1
            return None
        try:
            parts = unpack_entry(data)
        except ValueError:
            self.misses += 1
            return None
        self.hits += 1
        return parts

    def put(self, key: str, parts: dict[str, bytes]) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, pack_entry(parts))
