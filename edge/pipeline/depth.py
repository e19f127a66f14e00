"""Where an event's depth frames come from: a folder of depth images, or the face-shaped proxy.

Video files carry no depth. A depth camera's frames are read from a folder next to the video
(frame N of the video = the N-th file in numeric order, as CAS(ME)^3 stores them), registered
with the colour clip's transform. Without one, `proxy` feeds the smooth face-shaped surface of
`edge.depth`: the model runs, but its depth branch sees no real face, and events say so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from edge._lazy import require
from edge.align.aligner import Registration
from edge.align.event import register_depth
from edge.depth import face_depth_proxy, relative_depth
from edge.errors import EdgeBuildError

__all__ = ["DepthSource", "ProxyDepth", "FolderDepth", "make_depth_source", "read_depth_image"]

_NUMBER = re.compile(r"(\d+)")
DEPTH_SUFFIXES = (".png", ".tif", ".tiff", ".pgm")


def read_depth_image(path: Path) -> np.ndarray:
    """A depth image (16-bit PNG in millimetres, 0 = no reading) as HxW."""
    cv2 = require("cv2", purpose="reading depth images")
    if not path.is_file():
        raise EdgeBuildError(f"{path}: depth image not found")
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise EdgeBuildError(f"{path}: not a readable depth image")
    return depth[:, :, 0] if depth.ndim == 3 else depth


class DepthSource:
    """Relative depth (uint8 HxW, 255 nearest) for a video frame, in the registered crop."""

    name = "none"
    measured = False

    def frame(self, index: int, registration: Registration) -> np.ndarray:
        raise NotImplementedError


class ProxyDepth(DepthSource):
    """The same face-shaped surface for every frame: a stand-in, not a measurement."""

    name = "proxy"

    def __init__(self, size: Tuple[int, int], range_mm: float) -> None:
        #: the relative-depth image every frame gets (already in crop coordinates)
        self.image = relative_depth(face_depth_proxy(size), range_mm)

    def frame(self, index: int, registration: Registration) -> np.ndarray:
        return self.image


class FolderDepth(DepthSource):
    """Depth images in a folder, the N-th in numeric order for video frame N."""

    measured = True

    def __init__(self, folder: Path, range_mm: float) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise EdgeBuildError(f"{folder}: depth folder not found")
        files = [p for p in folder.iterdir() if p.suffix.lower() in DEPTH_SUFFIXES]
        if not files:
            raise EdgeBuildError(f"{folder}: no depth images ({', '.join(DEPTH_SUFFIXES)})")
        self.files: List[Path] = sorted(files, key=_numeric_key)
        self.range_mm = range_mm
        self.name = f"folder {folder}"
        self._cache: Dict[int, np.ndarray] = {}

    def frame(self, index: int, registration: Registration) -> np.ndarray:
        if not 0 <= index < len(self.files):
            raise EdgeBuildError(
                f"video frame {index} has no depth image ({len(self.files)} in the depth folder)"
            )
        return register_depth(read_depth_image(self.files[index]), registration, self.range_mm)


def _numeric_key(path: Path):
    numbers = _NUMBER.findall(path.stem)
    return (int(numbers[-1]) if numbers else -1, path.name)


def make_depth_source(
    spec_value: Optional[str], size: Tuple[int, int], range_mm: float
) -> Optional[DepthSource]:
    """`proxy`, a folder path, or None (no depth given)."""
    if spec_value is None:
        return None
    if spec_value == "proxy":
        return ProxyDepth(size, range_mm)
    return FolderDepth(Path(spec_value), range_mm)
