"""A fixed camera computed from a scene's bounds, and the projection it defines.

The camera looks at the bounds from a fixed direction and backs off until all eight corners
of the bounding box fall inside the view (with a margin) for any viewport at least as wide
as ``aspect`` (4:3 by default, the shape of the rendered images); a narrower viewport may
crop left and right. The view angle is vertical, as in VTK and three.js. Nothing depends on
a renderer, so the same numbers drive the PNG, the ``.glb`` and the browser viewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Camera:
    position: np.ndarray  # [3]
    focal_point: np.ndarray  # [3]
    up: np.ndarray  # [3], orthogonal to the view direction
    view_angle: float  # vertical, degrees

    def __post_init__(self) -> None:
        for name in ("position", "focal_point", "up"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (3,):
                raise ValueError(f"camera {name} must have 3 coordinates, got shape {list(value.shape)}")
            setattr(self, name, value)
        if not 0 < self.view_angle < 180:
            raise ValueError(f"camera view angle must be in (0, 180) degrees, got {self.view_angle}")
        self.view_angle = float(self.view_angle)

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit vectors (right, up, back): back points from the focal point to the camera."""
        return _basis(self.focal_point - self.position, self.up)


def _basis(forward: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    forward = np.asarray(forward, dtype=np.float64)
    norm = np.linalg.norm(forward)
    if norm == 0:
        raise ValueError("camera position and focal point coincide")
    forward = forward / norm
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-9:
        raise ValueError(f"camera up {list(up)} is parallel to the view direction")
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    return right, true_up, -forward


def box_corners(bounds) -> np.ndarray:
    """The 8 corners ``[8, 3]`` of ``(xmin, xmax, ymin, ymax, zmin, zmax)``."""
    b = np.asarray(bounds, dtype=np.float64).reshape(3, 2)
    return np.array([[x, y, z] for x in b[0] for y in b[1] for z in b[2]])


def camera_for(
    bounds,
    *,
    direction=(1.0, -1.4, 0.9),
    up=(0.0, 0.0, 1.0),
    view_angle: float = 30.0,
    aspect: float = 4 / 3,
    margin: float = 1.12,
) -> Camera:
    """The camera that looks at ``bounds`` from ``direction`` (focal point to camera) and frames it.

    The bounding box's projection is centred (a few fixed refinement steps) and the distance is
    the smallest that keeps every corner ``margin`` inside the view at ``aspect``. Same bounds,
    same camera, to the last bit.
    """
    corners = box_corners(bounds)
    right, true_up, back = _basis(-np.asarray(direction, dtype=np.float64), up)
    tan_v = np.tan(np.radians(view_angle) / 2)
    tan_h = tan_v * aspect
    target = corners.mean(axis=0)
    distance = 0.0
    for step in range(4):
        rel = corners - target
        x, y, z = rel @ right, rel @ true_up, rel @ back
        distance = float(np.max(np.maximum(z + margin * np.abs(x) / tan_h, z + margin * np.abs(y) / tan_v)))
        if step == 3:
            break
        # centre the projected box: move the target sideways to the middle of the projected extent
        depth = distance - z
        sx, sy = x / (depth * tan_h), y / (depth * tan_v)
        target = target + right * (sx.max() + sx.min()) / 2 * distance * tan_h
        target = target + true_up * (sy.max() + sy.min()) / 2 * distance * tan_v
    return Camera(position=target + back * distance, focal_point=target, up=true_up, view_angle=view_angle)


def project(camera: Camera, xyz, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``[N, 2]`` (column, row from the top; pixel ``(c, r)`` covers
    ``[c, c+1) x [r, r+1)``) and depth along the view axis ``[N]`` of points seen by ``camera``
    in a ``size = (width, height)`` image. Points behind the camera get a negative depth."""
    width, height = size
    right, true_up, back = camera.basis()
    rel = np.asarray(xyz, dtype=np.float64).reshape(-1, 3) - camera.position
    depth = -(rel @ back)
    tan_v = np.tan(np.radians(camera.view_angle) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndc_x = (rel @ right) / (depth * tan_v * width / height)
        ndc_y = (rel @ true_up) / (depth * tan_v)
    pixels = np.stack([(ndc_x + 1) / 2 * width, (1 - ndc_y) / 2 * height], axis=1)
    return pixels, depth
