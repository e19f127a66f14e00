"""Depth frames: raw millimetres -> the relative 8-bit depth models read, and a face-shaped proxy.

Depth sensors report distance in millimetres (CAS(ME)^3 stores 16-bit PNGs, 0 = no reading).
Absolute distance says where the person sits, not what the face does, so models get depth
relative to the nearest face point: 255 at the nearest point, falling to 0 at `range_mm` behind
it, and 0 where the sensor had no reading. The proxy is a smooth face-shaped surface in the
aligned crop (head ellipsoid, nose ridge, eye sockets, lips) for when no depth camera exists:
synthetic calibration data and `edge-run --depth proxy`. It is not a measurement.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from edge.errors import EdgeBuildError

__all__ = ["relative_depth", "face_depth_proxy", "PROXY_DISTANCE_MM"]

#: Distance of the proxy's face plane from the camera.
PROXY_DISTANCE_MM = 600.0


def relative_depth(depth_mm: np.ndarray, range_mm: float = 100.0) -> np.ndarray:
    """HxW depth in mm (0 = invalid) -> HxW uint8 relative depth (255 = nearest face point)."""
    depth = np.asarray(depth_mm)
    if depth.ndim == 3:
        depth = depth[:, :, 0]
    if depth.ndim != 2:
        raise EdgeBuildError(f"expected an HxW depth map, got shape {depth.shape}")
    if range_mm <= 0:
        raise EdgeBuildError(f"depth range must be positive, got {range_mm}")
    depth = depth.astype(np.float32)
    valid = depth > 0
    if not valid.any():
        return np.zeros(depth.shape, dtype=np.uint8)
    h, w = depth.shape
    centre = valid[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    values = depth[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4][centre]
    # The 2nd percentile, not the minimum: one flying pixel must not shift the whole face.
    nearest = float(np.percentile(values if values.size else depth[valid], 2.0))
    rel = 1.0 - (depth - nearest) / np.float32(range_mm)
    out = np.clip(np.rint(rel * 255.0), 0, 255).astype(np.uint8)
    out[~valid] = 0
    return out


def _bump(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, sx: float, sy: float):
    return np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2) / 2.0)


def face_depth_proxy(
    size: Tuple[int, int], *, relief_mm: float = 60.0, background_mm: Optional[float] = 250.0
) -> np.ndarray:
    """HxW float32 depth in mm of a face-shaped surface in the aligned crop (0 nowhere)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx /= w
    yy /= h
    # Head: an ellipsoid centred between the eyes and the mouth of the ArcFace-style crop.
    r2 = ((xx - 0.5) / 0.42) ** 2 + ((yy - 0.52) / 0.55) ** 2
    head = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    surface = relief_mm * head
    surface += 22.0 * _bump(xx, yy, 0.5, 0.55, 0.05, 0.13)  # nose ridge and tip
    surface -= 9.0 * _bump(xx, yy, 0.34, 0.44, 0.07, 0.045)  # eye sockets
    surface -= 9.0 * _bump(xx, yy, 0.66, 0.44, 0.07, 0.045)
    surface += 5.0 * _bump(xx, yy, 0.5, 0.78, 0.11, 0.035)  # lips
    depth = PROXY_DISTANCE_MM + relief_mm - surface
    if background_mm is not None:
        depth = np.where(r2 < 1.0, depth, PROXY_DISTANCE_MM + relief_mm + background_mm)
    return depth.astype(np.float32)
