"""Scenes stage: analysis results -> 3D scenes -> still images, a ``.glb`` download, and the
browser viewer's JSON. The only package that imports pyvista (lazily, when a scene is built or
drawn), so `palette` and the JSON format work without it.

The viewer's JSON (`to_json`)::

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

from attnreport.scenes.camera import Camera, camera_for, project
from attnreport.scenes.decision import MAX_TRIANGLES, decision_scene, iso_surface
from attnreport.scenes.flow import THIRD_AXES, flow_scene
from attnreport.scenes.palette import CLASS_COLORS, class_color
from attnreport.scenes.scene import (
    KINDS,
    LineSet,
    Mesh,
    Points,
    Scene,
    Text,
    export_glb,
    render,
    to_json,
    to_pyvista,
)
from attnreport.scenes.trajectory import trajectories, trajectory_scene

__all__ = [
    "CLASS_COLORS",
    "KINDS",
    "MAX_TRIANGLES",
    "THIRD_AXES",
    "Camera",
    "LineSet",
    "Mesh",
    "Points",
    "Scene",
    "Text",
    "camera_for",
    "class_color",
    "decision_scene",
    "export_glb",
    "flow_scene",
    "iso_surface",
    "project",
    "render",
    "to_json",
    "to_pyvista",
    "trajectories",
    "trajectory_scene",
]
