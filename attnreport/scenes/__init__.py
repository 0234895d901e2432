"""Scenes stage: analysis results -> 3D scenes -> still images, a ``.glb`` download, and the
browser viewer's JSON. The only package that imports pyvista (lazily, when a scene is built or
drawn), so `palette` and the JSON format work without it.

One module per concern: `geometry` (the scene dataclasses, numpy only), the builders
(`decision`, `flow`, `trajectory`), `viewer_data` (the viewer's JSON, its format in that
module's docstring), `rendering` (pyvista: images and glTF) and `camera` (the fixed camera).
"""

from attnreport.scenes.camera import Camera, camera_for, project
from attnreport.scenes.decision import MAX_TRIANGLES, DecisionFacts, decision_scene, iso_surface
from attnreport.scenes.flow import THIRD_AXES, FlowFacts, Lattice, flow_scene, lattice_scene
from attnreport.scenes.geometry import KINDS, LineSet, Mesh, Points, Scene, Text
from attnreport.scenes.palette import CLASS_COLORS, class_color
from attnreport.scenes.rendering import export_glb, render, to_pyvista
from attnreport.scenes.trajectory import TrajectoryFacts, trajectories, trajectory_scene
from attnreport.scenes.viewer_data import to_json

__all__ = [
    "CLASS_COLORS",
    "KINDS",
    "MAX_TRIANGLES",
    "THIRD_AXES",
    "Camera",
    "DecisionFacts",
    "FlowFacts",
    "Lattice",
    "LineSet",
    "Mesh",
    "Points",
    "Scene",
    "Text",
    "TrajectoryFacts",
    "camera_for",
    "class_color",
    "decision_scene",
    "export_glb",
    "flow_scene",
    "iso_surface",
    "lattice_scene",
    "project",
    "render",
    "to_json",
    "to_pyvista",
    "trajectories",
    "trajectory_scene",
]
