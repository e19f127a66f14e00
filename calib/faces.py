"""Real face photographs that ship inside installed packages, as onset/apex crops.

No face data may be downloaded at run time and dataset licences forbid shipping CASME II frames,
so parity checks and the demo use public-domain photographs bundled with scikit-image
(`astronaut`: NASA portrait of Eileen Collins; `camera`: the MIT cameraman), cropped to the face
as tightly as CASME II's registered crops. An apex frame is made by a smooth local warp of about
1.5 px at 224x224 around the mouth corners and brows (roughly AU12 + AU1/2), the amplitude of a
real micro-expression, so the motion input `apex - onset` is realistic rather than noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

from edge._lazy import require

__all__ = [
    "FacePhoto",
    "FACE_PHOTOS",
    "face_crop",
    "micro_expression_field",
    "micro_expression_pair",
    "reference_pairs",
    "reference_samples",
]


@dataclass(frozen=True)
class FacePhoto:
    """A packaged photograph and the face box in it: (top, bottom, left, right) pixels."""

    name: str
    load: Callable[[], np.ndarray]
    box: Tuple[int, int, int, int]
    licence: str
    # Where mouth corners and brows sit inside the crop, as fractions of its side.
    mouth_corners: Tuple[Tuple[float, float], Tuple[float, float]] = ((0.36, 0.78), (0.64, 0.78))
    brows: Tuple[Tuple[float, float], Tuple[float, float]] = ((0.32, 0.36), (0.68, 0.36))


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        data = require("skimage.data", purpose="the packaged face photographs")
        image = getattr(data, name)()
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        return np.ascontiguousarray(image[:, :, :3])

    return load


FACE_PHOTOS: Dict[str, FacePhoto] = {
    "astronaut": FacePhoto(
        "astronaut", _skimage("astronaut"), (40, 200, 146, 306), "public domain (NASA)"
    ),
    "cameraman": FacePhoto(
        "cameraman",
        _skimage("camera"),
        (88, 208, 162, 282),
        "public domain (scikit-image)",
        mouth_corners=((0.40, 0.80), (0.66, 0.80)),
        brows=((0.38, 0.40), (0.66, 0.38)),
    ),
}


def face_crop(photo: str, size: int = 224) -> np.ndarray:
    """The face of a packaged photograph as a size x size RGB uint8 crop."""
    cv2 = require("cv2", purpose="cropping face photographs")
    entry = FACE_PHOTOS[photo]
    top, bottom, left, right = entry.box
    crop = entry.load()[top:bottom, left:right]
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def _bump(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, sigma: float) -> np.ndarray:
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2.0 * sigma**2))


def micro_expression_field(
    photo: str, *, size: int = 224, amplitude_px: float = 1.5
) -> Tuple[np.ndarray, np.ndarray]:
    """(dx, dy) float32 [size, size]: how far `micro_expression_pair` moves each pixel (the
    ground truth its optical flow is measured against)."""
    entry = FACE_PHOTOS[photo]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    sigma = 0.07 * size
    dx = np.zeros_like(xx)
    dy = np.zeros_like(yy)
    for (fx, fy), side in zip(entry.mouth_corners, (-1.0, 1.0)):
        weight = _bump(xx, yy, fx * size, fy * size, sigma)
        dx += side * 0.6 * amplitude_px * weight
        dy -= amplitude_px * weight
    for fx, fy in entry.brows:
        dy -= 0.8 * amplitude_px * _bump(xx, yy, fx * size, fy * size, 1.3 * sigma)
    return dx, dy


def micro_expression_pair(
    photo: str, *, size: int = 224, amplitude_px: float = 1.5
) -> Tuple[np.ndarray, np.ndarray]:
    """(onset, apex) crops: apex lifts the mouth corners outward-up and raises the brows."""
    cv2 = require("cv2", purpose="warping face photographs")
    onset = face_crop(photo, size)
    dx, dy = micro_expression_field(photo, size=size, amplitude_px=amplitude_px)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    # remap samples the source at (x - dx, y - dy), moving content by (+dx, +dy).
    apex = cv2.remap(
        onset, xx - dx, yy - dy, interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )
    return onset, apex


def reference_pairs(size: int = 224) -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """Every packaged face as (name, onset, apex)."""
    return [(name,) + micro_expression_pair(name, size=size) for name in FACE_PHOTOS]


def reference_samples(
    roles: Sequence[str], size: Tuple[int, int] = (224, 224), *, depth_range_mm: float = 100.0
) -> List[Tuple[str, Dict[str, np.ndarray]]]:
    """Every packaged face as (name, role -> frame) for a model's frame roles.

    Frames between onset and apex carry the apex warp at the raised-cosine strength of their
    position; depth roles get the face-shaped proxy (`edge.depth`), the same for every photo.
    """
    from calib.roles import frames_for_roles, ramp_weight
    from edge.depth import face_depth_proxy, relative_depth

    height, width = size
    proxy = relative_depth(face_depth_proxy((height, width)), depth_range_mm)
    out = []
    for name in FACE_PHOTOS:

        def frame_at(position: float, name: str = name) -> np.ndarray:
            weight = ramp_weight(position)
            if weight == 0.0:
                frame = face_crop(name, height)
            else:
                _, frame = micro_expression_pair(name, size=height, amplitude_px=1.5 * weight)
            return frame if width == height else resize_crop(frame, (height, width))

        frames = frames_for_roles(roles, frame_at, lambda _p: proxy, where=f"reference face {name}")
        out.append((name, frames))
    return out


def resize_crop(frame: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    cv2 = require("cv2", purpose="resizing face crops")
    return cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)
