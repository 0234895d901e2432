"""The browser viewer's data: `to_json` turns a `Scene` into the plain JSON that
``templates/assets/viewer3d.js`` draws with WebGL.

The format is a contract with that script (and with the pages that embed it), so it lives in a
module of its own: it changes when the viewer does, not when the geometry or the renderer does.
Numpy only; floats are rounded to 4 decimals, so the same scene gives the same bytes.

The format::

    {"kind": "decision_space" | "attention_flow" | "hidden_trajectories", "title": str,
     "axes": {"labels": [x, y, z], "bounds": [xmin, xmax, ymin, ymax, zmin, zmax]},
     "camera": {"position": [x, y, z], "target": [x, y, z], "up": [x, y, z], "fov": degrees},
     "points": {"xyz": [3N floats], "color": [3N ints 0-255], "size": [N floats, diameters in scene units],
                "label": [N str], "link": [N str | null], "outline": [N 0 | 1], "highlight": int | null},
     "meshes": [{"name", "vertices": [3V floats], "triangles": [3T ints], "color": [r, g, b], "opacity"}],
     "lines": [{"name", "segments": [6S floats], "width": [S floats], "opacity": [S floats],
                "color": [r, g, b]}],
     "texts": [{"xyz": [x, y, z], "text": str}],
     "notes": [str]}

``fov`` is the vertical view angle; the camera frames the bounds for viewports at least 4:3 wide.
"""

from __future__ import annotations

import numpy as np

from attnreport.scenes.geometry import Scene


def _floats(values) -> list[float]:
    # float64 first, so float32 inputs round to short decimals; "+ 0.0" turns -0.0 into 0.0
    return (np.round(np.asarray(values, dtype=np.float64).ravel(), 4) + 0.0).tolist()


def to_json(scene: Scene) -> dict:
    """The scene as plain JSON data for the browser viewer (the format is in this module's
    docstring): flat coordinate lists, floats rounded to 4 decimals, colours as 0-255
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
