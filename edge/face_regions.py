"""Salient facial regions (brows+eyes, nose, mouth) as a mask in our aligned crop's coordinates.

AFNet-M's mask attention reads a facial-region mask. Its paper does not say where the mask comes
from, so mer-edge fixes one: three regions placed on the ArcFace 5-point template that the
aligner warps every face onto (`edge.align.template`). Because the crop is registered, one
constant mask fits every frame; the model's constant buffer and the runtime's `mask:regions`
input are both made here, so the two mask modes see identical numbers.

The mask is binary (0.0 or 1.0, float32): a pixel is 1 when its position falls inside any
region's ellipse. Numpy only, so the device builds it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple, Union

import numpy as np

from edge.errors import EdgeBuildError

__all__ = ["Region", "REGIONS", "TEMPLATE_SIZE", "region_mask"]

#: Side of the crop the region coordinates are given in (the ArcFace template's 112x112).
TEMPLATE_SIZE = 112.0


@dataclass(frozen=True)
class Region:
    """An axis-aligned ellipse in 112x112 template pixels (x right, y down)."""

    name: str
    cx: float
    cy: float
    rx: float
    ry: float
    description: str


#: Centres follow the template points: eyes (38.3, 51.7) and (73.5, 51.5), nose tip
#: (56.0, 71.7), mouth corners (41.5, 92.4) and (70.7, 92.2). Each eye ellipse reaches up to
#: cover the brow (about 0.4 eye distances above the eye centre), the nose ellipse runs from
#: between the eyes to below the nose tip, and the mouth ellipse covers both corners with margin.
REGIONS: Tuple[Region, ...] = (
    Region("left_brow_eye", 38.3, 45.0, 15.0, 14.0, "brow and eye on the image's left"),
    Region("right_brow_eye", 73.5, 45.0, 15.0, 14.0, "brow and eye on the image's right"),
    Region("nose", 56.0, 64.0, 10.0, 13.0, "nose bridge to below the nose tip"),
    Region("mouth", 56.1, 92.3, 21.0, 10.0, "both mouth corners and lips"),
)


def _size(size: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise EdgeBuildError(f"region mask size must be (height, width), got {size!r}") from None
    if height < 1 or width < 1:
        raise EdgeBuildError(f"region mask size must be positive, got {(height, width)}")
    return height, width


def region_mask(size: Union[int, Tuple[int, int]]) -> np.ndarray:
    """The binary region mask [H, W] float32 for a crop of `size` = (height, width).

    The template is scaled to the crop like `edge.align.template.template_points` (x by W/112,
    y by H/112, separately for non-square crops); a pixel is tested at its index coordinates,
    the convention `cv2.warpAffine` places the template points in.
    """
    height, width = _size(size)
    sx, sy = width / TEMPLATE_SIZE, height / TEMPLATE_SIZE
    ys = np.arange(height, dtype=np.float64)[:, None]
    xs = np.arange(width, dtype=np.float64)[None, :]
    inside = np.zeros((height, width), dtype=bool)
    for r in REGIONS:
        inside |= ((xs - r.cx * sx) / (r.rx * sx)) ** 2 + ((ys - r.cy * sy) / (r.ry * sy)) ** 2 <= 1
    return inside.astype(np.float32)
