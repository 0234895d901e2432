"""The scene cache (`scenes.cache`): drawn scenes kept by their content. Real PyVista renders, no
mocks: a hit copies byte-identical files and draws nothing (the stage's own `rendered` count and
the entry's unchanged mtime say so); any change of what the files are made from misses; a
damaged entry is drawn again, never served; a build without a cache folder keeps nothing."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pyvista")
pytest.importorskip("PIL")

from attnreport.analysis.rollout import rollout  # noqa: E402
from attnreport.scenes import Mesh, Points, Scene, class_color, flow_scene, trajectory_scene  # noqa: E402
from attnreport.scenes.cache import (  # noqa: E402
    BUILDER_MODULES,
    DRAWING_MODULES,
    SceneCache,
    pack_entry,
    scene_key,
    unpack_entry,
)
from attnreport.scenes.geometry import LineSet, Text  # noqa: E402
from attnreport.scenes.stage import SceneStage  # noqa: E402
from attnreport.testing import make_trace  # noqa: E402

SIZE = (160, 120)
PARTS = ("webp", "json", "glb")


def asymmetric_scene() -> Scene:
    """Points of three colours at distinct corners (one ringed, one highlighted), a triangle, a
    line set and a text: every kind of part a scene holds."""
    points = Points(
        xyz=np.array([[0.0, 0.0, 0.0], [4.0, 0.2, 0.3], [0.5, 3.0, 2.0]]),
        colors=np.array([class_color(0), class_color(1), class_color(2)]),
        sizes=np.array([0.8, 0.6, 0.7]),
        labels=["a", "b", "c"],
        links=["examples/a.html", None, "examples/c.html"],
        outline=np.array([False, True, False]),
        highlight=2,
    )
    triangle = Mesh(
        "tri",
        vertices=[[3.5, 2.5, 0.0], [4.5, 3.0, 0.0], [3.8, 3.5, 1.5]],
        triangles=[[0, 1, 2]],
        color=class_color(3),
        opacity=0.7,
    )
    lines = LineSet(
        "edges",
        segments=[[[0.0, 0.0, 0.0], [4.0, 0.2, 0.3]]],
        widths=[0.1],
        opacities=[0.6],
        color=class_color(4),
    )
    return Scene(
        kind="decision_space",
        title="cached",
        points=points,
        meshes=[triangle],
        lines=[lines],
        texts=[Text([0.5, 3.0, 2.5], "top")],
        notes=["a note"],
    )


def save(stage: SceneStage, scene: Scene, name: str = "s", *, glb: bool = True):
    return stage._save(scene, name, glb=glb, size=SIZE)


def files_of(stage: SceneStage, name: str = "s") -> dict[str, bytes]:
    folder = stage.spool / "scenes"
    paths = {part: folder / f"{name}.{part}" for part in PARTS}
    return {part: path.read_bytes() for part, path in paths.items() if path.exists()}


def entries(cache: Path) -> list[Path]:
    return sorted((cache / "scenes").glob("*/*.scene"))


def test_a_cached_scene_is_copied_byte_for_byte_and_not_drawn(tmp_path):
    scene, cache = asymmetric_scene(), tmp_path / "cache"
    first = SceneStage(tmp_path / "a", "light", cache_dir=cache)
    saved = save(first, scene)
    assert first.rendered == 1 and first.cache.misses == 1 and first.cache.hits == 0
    [entry] = entries(cache)
    stamp = entry.stat().st_mtime_ns

    second = SceneStage(tmp_path / "b", "light", cache_dir=cache)
    again = save(second, scene, name="other-name")  # the file's name is not part of the key
    assert second.rendered == 0 and second.cache.hits == 1
    assert entry.stat().st_mtime_ns == stamp and entries(cache) == [entry]  # read, not written
    assert files_of(second, "other-name") == files_of(first)
    assert set(files_of(first)) == set(PARTS)
    assert (again.title, again.notes, again.glb) == (saved.title, saved.notes, "scenes/other-name.glb")
    assert second.files == {
        "scenes/other-name.webp": second.spool / "scenes" / "other-name.webp",
        "scenes/other-name.glb": second.spool / "scenes" / "other-name.glb",
    }
    # what the cache serves is what a fresh draw gives (renders are repeatable on one machine)
    plain = SceneStage(tmp_path / "c", "light")
    save(plain, scene)
    assert plain.rendered == 1 and files_of(plain) == files_of(first)
    assert json.loads(files_of(second, "other-name")["json"])["title"] == "cached"


def test_what_the_files_are_made_of_is_in_the_key(tmp_path):
    scene, cache = asymmetric_scene(), tmp_path / "cache"
    save(SceneStage(tmp_path / "a", "light", cache_dir=cache), scene)

    def drawn(theme: str, changed: Scene, **kwargs) -> int:
        stage = SceneStage(tmp_path / f"s{len(entries(cache))}", theme, cache_dir=cache)
        stage._save(changed, "s", **{"glb": True, "size": SIZE, **kwargs})
        return stage.rendered

    # another site theme drawn in the same colours (high-contrast's scenes are light's) hits
    assert drawn("high-contrast", scene) == 0
    assert drawn("dark", scene) == 1
    moved = copy.deepcopy(scene)
    moved.points.xyz[1, 2] += 0.5
    assert drawn("light", moved) == 1
    assert drawn("light", scene, size=(120, 90)) == 1
    assert drawn("light", scene, glb=False) == 1
    assert len(entries(cache)) == 5
    assert drawn("light", moved) == 0


def mutations(scene: Scene):
    """(what, change) pairs: each changes one value somewhere in the scene's tree."""

    def at(path: str, fn):
        def change(s: Scene):
            *parents, last = path.split(".")
            owner = s
            for part in parents:
                owner = owner[int(part)] if part.isdigit() else getattr(owner, part)
            setattr(owner, last, fn(getattr(owner, last)))

        return path, change

    yield at("title", lambda v: v + "!")
    yield at("kind", lambda v: "hidden_trajectories")
    yield at("frame", lambda v: not v)
    yield at("notes", lambda v: [*v, "more"])
    yield at("axis_labels", lambda v: (v[1], v[0], v[2]))
    yield at("bounds", lambda v: v + np.array([0, 1e-12, 0, 0, 0, 0]))
    yield at("facts", lambda v: ("some", 1.5))
    yield at("points.xyz", lambda v: v[::-1].copy())
    yield at("points.colors", lambda v: v[:, ::-1].copy())
    yield at("points.sizes", lambda v: v * 1.5)
    yield at("points.labels", lambda v: ["a", "b", "d"])
    yield at("points.links", lambda v: [None, None, "examples/c.html"])
    yield at("points.outline", lambda v: ~v)
    yield at("points.highlight", lambda v: 0)
    yield at("meshes.0.name", lambda v: "other")
    yield at("meshes.0.vertices", lambda v: v * 2)
    yield at("meshes.0.triangles", lambda v: v[:, ::-1].copy())
    yield at("meshes.0.color", lambda v: (1, 2, 3))
    yield at("meshes.0.opacity", lambda v: 0.5)
    yield at("lines.0.segments", lambda v: v + 1)
    yield at("lines.0.widths", lambda v: v * 2)
    yield at("lines.0.opacities", lambda v: v / 2)
    yield at("lines.0.color", lambda v: (9, 9, 9))
    yield at("texts.0.text", lambda v: "bottom")
    yield at("texts.0.xyz", lambda v: v + 0.25)
    yield at("camera.position", lambda v: v * 1.01)
    yield at("camera.focal_point", lambda v: v + 0.1)
    yield at("camera.up", lambda v: -v)
    yield at("camera.view_angle", lambda v: v + 1)


def test_every_field_of_the_scene_tree_moves_the_key():
    """The key walks the whole scene, so whatever `render`, `export_glb` or `to_json` reads from
    it is in the key: each single change anywhere gives another key."""
    scene = asymmetric_scene()
    base = scene_key(scene, theme="light", size=SIZE, glb=True)
    assert scene_key(copy.deepcopy(scene), theme="light", size=SIZE, glb=True) == base
    seen = {base}
    for what, change in mutations(scene):
        changed = copy.deepcopy(scene)
        change(changed)
        key = scene_key(changed, theme="light", size=SIZE, glb=True)
        assert key not in seen, what
        seen.add(key)
    # a value's type counts: an int is not the float of the same value
    a, b = copy.deepcopy(scene), copy.deepcopy(scene)
    a.facts, b.facts = 1, 1.0
    keys = {scene_key(s, theme="light", size=SIZE, glb=True) for s in (a, b)}
    assert len(keys) == 2


def test_the_builders_scenes_are_keyed_and_unknown_values_refused():
    rng = np.random.default_rng(0)
    trace = make_trace(rng.dirichlet(np.ones(5), size=(2, 2, 5)))
    for scene in (flow_scene(trace, rollout_row=rollout(trace.attentions)[0]), trajectory_scene(trace)):
        assert len(scene_key(scene, theme="light", size=SIZE, glb=False)) == 64
        assert scene.facts is not None  # the builder's facts dataclass is walked too
    odd = asymmetric_scene()
    odd.facts = {1, 2}
    with pytest.raises(TypeError, match="set"):
        scene_key(odd, theme="light", size=SIZE, glb=False)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "header"])
def test_a_damaged_entry_is_drawn_again_not_served(tmp_path, damage):
    scene, cache = asymmetric_scene(), tmp_path / "cache"
    first = SceneStage(tmp_path / "a", "light", cache_dir=cache)
    save(first, scene)
    [entry] = entries(cache)
    good = entry.read_bytes()
    if damage == "truncated":  # a copy cut short, as a full disk leaves it
        entry.write_bytes(good[: len(good) - 100])
    elif damage == "flipped":  # the same length, one byte of the image changed
        data = bytearray(good)
        data[len(good) // 2] ^= 0xFF
        entry.write_bytes(bytes(data))
    elif damage == "empty":
        entry.write_bytes(b"")
    else:
        entry.write_bytes(good.replace(b"[[", b"[{", 1))  # the header's JSON broken
    with pytest.raises(ValueError):
        unpack_entry(entry.read_bytes())
    second = SceneStage(tmp_path / "b", "light", cache_dir=cache)
    save(second, scene)
    assert second.rendered == 1 and second.cache.hits == 0
    assert files_of(second) == files_of(first)
    assert entry.read_bytes() == good  # written again, whole
    assert not list((cache / "scenes").glob("*/*.tmp"))


def test_an_entry_missing_a_part_is_not_served(tmp_path):
    scene, cache = asymmetric_scene(), tmp_path / "cache"
    first = SceneStage(tmp_path / "a", "light", cache_dir=cache)
    save(first, scene)
    key = scene_key(scene, theme="light", size=SIZE, glb=True)
    parts = SceneCache(cache).get(key)
    SceneCache(cache).put(
        key, {"webp": parts["webp"], "json": parts["json"], "meta": parts["meta"]}
    )  # no glb
    second = SceneStage(tmp_path / "b", "light", cache_dir=cache)
    save(second, scene)
    assert second.rendered == 1 and files_of(second) == files_of(first)


def test_pack_and_unpack_are_inverse():
    parts = {"webp": b"\x00image", "json": b"{}", "glb": b""}
    assert unpack_entry(pack_entry(parts)) == parts
    with pytest.raises(ValueError, match="past its parts"):
        unpack_entry(pack_entry(parts) + b"x")


def test_without_a_cache_folder_nothing_is_read_or_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNREPORT_CACHE", str(tmp_path / "default"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    stage = SceneStage(tmp_path / "a", "light")
    save(stage, asymmetric_scene())
    save(stage, asymmetric_scene(), name="t")
    assert stage.cache is None and stage.rendered == 2
    # (Mesa and matplotlib keep their own caches under XDG_CACHE_HOME; attnreport keeps none)
    assert not (tmp_path / "default").exists() and not (tmp_path / "xdg" / "attnreport").exists()


def example(seed: int = 0, n: int = 7, layers: int = 3, d: int = 5):
    """What `SceneStage.flow` reads of an example: its trace (random attentions and hidden
    states, [CLS] and [SEP] around) and its rollout row."""
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((layers + 1, n, d)).astype(np.float32)
    tokens = ["[CLS]"] + [f"w{i}" for i in range(1, n - 1)] + ["[SEP]"]
    special = np.zeros(n, dtype=bool)
    special[[0, -1]] = True
    trace = make_trace(
        rng.dirichlet(np.ones(n), size=(layers, 2, n)), tokens=tokens, special=special, hidden=hidden
    )
    return SimpleNamespace(trace=trace, rollout_row=rollout(trace.attentions)[0])


def test_an_examples_scenes_are_keyed_by_their_inputs_and_not_built_on_a_hit(tmp_path, monkeypatch):
    """Building an example's trajectories fits a PCA per layer, dearer than drawing them: a hit is
    found from the trace and the builder's arguments, and neither builder runs."""
    from attnreport.scenes import flow, trajectory

    built = []

    def counting(module, name):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            built.append(name)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counting(flow, "flow_scene")
    counting(trajectory, "trajectory_scene")
    cache, item = tmp_path / "cache", example()
    first = SceneStage(tmp_path / "a", "light", cache_dir=cache)
    files = first.flow(item)
    assert built == ["flow_scene", "trajectory_scene"] and first.rendered == 2
    second = SceneStage(tmp_path / "b", "light", cache_dir=cache)
    again = second.flow(copy.deepcopy(item))
    assert built == ["flow_scene", "trajectory_scene"] and second.rendered == 0 and second.cache.hits == 2
    assert again == dataclasses_replace_paths(files, second)
    for name in ("flow-00001", "paths-00001"):
        assert files_of(second, name) == files_of(first, name)
    # another trace (one hidden state moved) misses, both scenes
    moved = copy.deepcopy(item)
    moved.trace.hidden[1, 2, 0] += 0.5
    third = SceneStage(tmp_path / "c", "light", cache_dir=cache)
    third.flow(moved)
    assert third.rendered == 2 and third.cache.hits == 0


def dataclasses_replace_paths(files, stage: SceneStage):
    """`files` (a SceneFiles group of the first stage) with its JSON paths in `stage`'s spool."""
    import dataclasses

    def moved(f):
        data = stage.spool / "scenes" / Path(f.data).name
        return dataclasses.replace(f, data=data, choices=[moved(c) for c in f.choices])

    return moved(files)


def test_the_builder_modules_cover_what_the_builders_import():
    """Every module of the package that `flow_scene` or `trajectory_scene` imports, at any depth,
    is in the key's source hash (`BUILDER_MODULES` or `DRAWING_MODULES`)."""
    package = Path(__file__).resolve().parent.parent / "attnreport"
    seen, todo = set(), ["scenes/flow.py", "scenes/trajectory.py"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse((package / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("attnreport."):
                module = node.module.removeprefix("attnreport.").replace(".", "/")
                todo.append(
                    f"{module}.py" if (package / f"{module}.py").exists() else f"{module}/__init__.py"
                )
    assert seen <= set(BUILDER_MODULES) | set(DRAWING_MODULES), (
        seen - set(BUILDER_MODULES) - set(DRAWING_MODULES)
    )


@pytest.mark.slow
def test_a_rebuild_reads_every_scene_from_the_cache(tiny, tmp_path):
    """A real build twice, then with another theme drawn in the same colours: the second and
    third builds draw no scene (no entry written or touched), their scene files are the first's."""
    from sitebuild import write_config

    from attnreport.core.config import load_config
    from attnreport.pipeline import build

    texts = ["lock my account", "refund now"]
    rows = [{"id": f"r{i}", "text": t, "label": "alpha"} for i, t in enumerate(texts)]
    config_path = write_config(tmp_path / "p", tiny.export("bert"), rows)
    cache = tmp_path / "p" / "cache"

    def scene_files(site: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((site / "scenes").iterdir())}

    first = build(load_config(config_path), tmp_path / "site1", progress=False).site
    stamps = {p: p.stat().st_mtime_ns for p in entries(cache)}
    assert len(stamps) >= 5  # two flows, two trajectories, the decision space (and its layers)
    second = build(load_config(config_path), tmp_path / "site2", progress=False).site
    assert {p: p.stat().st_mtime_ns for p in entries(cache)} == stamps
    assert scene_files(second) == scene_files(first)
    config_path.write_text(config_path.read_text() + '[site]\ntheme = "high-contrast"\n')
    third = build(load_config(config_path), tmp_path / "site3", progress=False).site
    assert {p: p.stat().st_mtime_ns for p in entries(cache)} == stamps
    assert scene_files(third) == scene_files(first)
    assert (third / "assets" / "theme.css").read_bytes() != (first / "assets" / "theme.css").read_bytes()
