"""The 5-point face template, the points taken from the mesh, and the similarity fit.

MMNet reads CASME II's tight, registered crops; the runtime imitates them with one similarity
transform that maps the eyes, nose tip and mouth corners onto the ArcFace 112x112 template,
scaled to the model's input size.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from edge._lazy import require
from edge.errors import EdgeBuildError

__all__ = [
    "ARCFACE_112",
    "MESH_LEFT_EYE",
    "MESH_RIGHT_EYE",
    "MESH_NOSE_TIP",
    "MESH_MOUTH_CORNERS",
    "template_points",
    "mesh_five_points",
    "similarity_transform",
    "warp_face",
    "warp_depth",
]

#: ArcFace template (x, y) at 112x112: eye on the image's left, eye on the right, nose tip,
#: mouth corner on the left, mouth corner on the right.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

MESH_LEFT_EYE = (33, 133, 160, 159, 158, 144, 145, 153)
MESH_RIGHT_EYE = (362, 263, 387, 386, 385, 373, 374, 380)
MESH_NOSE_TIP = 1
MESH_MOUTH_CORNERS = (61, 291)


def template_points(size: int) -> np.ndarray:
    """The ArcFace template scaled to a `size` x `size` crop."""
    return ARCFACE_112 * (float(size) / 112.0)


def detector_template_points(size: int) -> np.ndarray:
    """(4, 2) template points for BlazeFace keypoints: eyes, nose tip, mouth centre."""
    five = template_points(size)
    return np.stack([five[0], five[1], five[2], five[3:5].mean(axis=0)])


def detector_four_points(keypoints: np.ndarray) -> np.ndarray:
    """(4, 2) points from BlazeFace's six keypoints, in `detector_template_points` order."""
    return np.asarray(keypoints, dtype=np.float64)[:4, :2]


def mesh_five_points(mesh: np.ndarray) -> np.ndarray:
    """(5, 2) points in template order from 468 FaceMesh landmarks."""
    xy = np.asarray(mesh, dtype=np.float64)[:, :2]
    return np.stack(
        [
            xy[list(MESH_LEFT_EYE)].mean(axis=0),
            xy[list(MESH_RIGHT_EYE)].mean(axis=0),
            xy[MESH_NOSE_TIP],
            xy[MESH_MOUTH_CORNERS[0]],
            xy[MESH_MOUTH_CORNERS[1]],
        ]
    )


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) src -> dst, as a 2x3 matrix.

    Umeyama's closed form: deterministic, unlike a RANSAC fit, so the same landmarks always
    give the same crop.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise EdgeBuildError(
            f"similarity fit needs two matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}"
        )
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    var = float((src_c**2).sum()) / len(src)
    if var <= 1e-12:
        raise EdgeBuildError("similarity fit: the source points coincide")
    cov = dst_c.T @ src_c / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = float((sigma * d).sum()) / var
    shift = dst_mean - scale * rotation @ src_mean
    return np.concatenate([scale * rotation, shift[:, None]], axis=1)


def warp_face(frame: np.ndarray, matrix: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Apply a 2x3 image->crop transform; borders replicate so edges add no false motion."""
    cv2 = require("cv2", purpose="warping faces")
    height, width = size
    return cv2.warpAffine(
        frame, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def warp_depth(depth: np.ndarray, matrix: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """The colour frame's transform applied to a depth map registered to it: nearest neighbour
    (interpolating across a depth edge invents surfaces) and 0 = no reading outside."""
    cv2 = require("cv2", purpose="warping depth maps")
    height, width = size
    return cv2.warpAffine(
        np.ascontiguousarray(depth), matrix, (width, height), flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )  # fmt: skip
