"""Finding faces anywhere in a frame, from close-ups to faces a few dozen pixels wide.

Each BlazeFace variant finds faces only within a band of sizes relative to its input square
(measured on the packaged photographs with sensor noise, 8 placements per point; box side over
region side, found in 8/8):

| model | input | smallest box found | ms per call (1 core) |
|---|---|---|---|
| short-range | 128 | 0.15 | ~1.5 |
| full-range | 192 | 0.09 | ~11 |
| back camera | 256 | 0.04 | ~19 |

so the back-camera model sees the smallest faces per call, and a frame is covered by a small
pyramid of square regions: the whole frame letterboxed, then tiles small enough that the
smallest wanted face reaches the model's band, overlapping by the largest face the level is
responsible for (a face cut by a tile border is not found in that tile). The short-range model
on the whole frame adds close-ups, where the others stop. `benchmarks/bench_align` measures the
three variants side by side on generated 720p and 1080p frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge.align.detector import (
    BACK_CAMERA,
    FULL_RANGE,
    SHORT_RANGE,
    BlazeFace,
    Detection,
    DetectorModel,
    Region,
    weighted_nms,
    whole_frame,
)
from edge.errors import EdgeBuildError

__all__ = ["SearchPlan", "FaceSearch", "search_regions", "roi_region", "BANDS"]

#: Detector box side over region side that each model finds reliably (see the table above).
BANDS: Dict[str, Tuple[float, float]] = {
    SHORT_RANGE.name: (0.15, 0.5),
    FULL_RANGE.name: (0.09, 0.5),
    BACK_CAMERA.name: (0.042, 0.5),
}
#: A face needs some context around its box to be found: tiles overlap by this many boxes.
CONTEXT = 1.5
#: Score above which a short-range detection on the whole frame is taken without refinement.
SURE = 0.8
#: A tracked face is looked for in a square this many box sides wide, centred on it (the
#: box is then 0.4 of the short-range input, the middle of its band).
ROI_SCALE = 2.5


def _starts(length: float, side: float, overlap: float) -> List[float]:
    """Tile origins along one axis: evenly spread, at least `overlap` shared, ends flush."""
    if side >= length:
        return [(length - side) / 2.0]
    count = max(2, math.ceil((length - overlap) / max(1.0, side - overlap)))
    step = (length - side) / (count - 1)
    return [i * step for i in range(count)]


def search_regions(
    width: int, height: int, min_face: float, band: Tuple[float, float]
) -> List[Region]:
    """Square regions that let a model with size `band` see every face >= `min_face` px.

    Level 0 is the whole frame; each next level shrinks the side (to no less than `lo/hi` of
    the previous, so the bands meet) until `min_face` is in band.
    """
    lo, hi = band
    if not 0 < lo < hi:
        raise EdgeBuildError(f"detector band {band} must satisfy 0 < lo < hi")
    if min_face <= 0:
        raise EdgeBuildError(f"smallest face must be > 0 px, got {min_face}")
    regions: List[Region] = [whole_frame(width, height)]
    side = float(max(width, height))
    smallest_side = min_face / lo
    while side > smallest_side * 1.001:  # tolerance: lo * (min_face / lo) may round up
        largest = lo * side  # smaller faces than the previous level's smallest come here
        side = max(smallest_side, side * lo / hi)
        overlap = min(side, CONTEXT * largest)
        for y0 in _starts(height, side, overlap):
            for x0 in _starts(width, side, overlap):
                regions.append((x0, y0, side))
    return regions


def roi_region(detection: Detection, scale: float = ROI_SCALE) -> Region:
    """The square, centred on a face, in which the short-range model re-finds it."""
    cx, cy = detection.centre
    side = scale * detection.size
    return (cx - side / 2.0, cy - side / 2.0, side)


@dataclass(frozen=True)
class SearchPlan:
    """Which models look at which regions of a frame of one size."""

    width: int
    height: int
    steps: Tuple[Tuple[str, Tuple[Region, ...]], ...]

    @property
    def calls(self) -> int:
        return sum(len(regions) for _, regions in self.steps)


class FaceSearch:
    """`search(image) -> [Detection, ...]` every face >= `min_face` px, largest first.

    `model` picks the tiling detector (`back` by default, as the fewest calls cover small
    faces; `full-range` and `short-range` for comparison); the short-range model also looks at
    the whole frame for close-ups. Plans are cached per frame size.
    """

    def __init__(
        self,
        *,
        min_face: float = 48.0,
        model: str = BACK_CAMERA.name,
        min_score: float = 0.5,
        short: Optional[BlazeFace] = None,
    ) -> None:
        models = {m.name: m for m in (SHORT_RANGE, FULL_RANGE, BACK_CAMERA)}
        if model not in models:
            raise EdgeBuildError(
                f"unknown search model {model!r}; available: {', '.join(sorted(models))}"
            )
        self.min_face = float(min_face)
        self.short = short or BlazeFace(SHORT_RANGE, min_score=min_score)
        tiler: DetectorModel = models[model]
        self.tiler = self.short if tiler is SHORT_RANGE else BlazeFace(tiler, min_score=min_score)
        self._plans: Dict[Tuple[int, int], SearchPlan] = {}

    def plan(self, width: int, height: int) -> SearchPlan:
        key = (int(width), int(height))
        if key not in self._plans:
            tiles = search_regions(width, height, self.min_face, BANDS[self.tiler.model.name])
            steps: List[Tuple[str, Tuple[Region, ...]]] = []
            if self.tiler is not self.short:
                steps.append((SHORT_RANGE.name, (whole_frame(width, height),)))
            steps.append((self.tiler.model.name, tuple(tiles)))
            self._plans[key] = SearchPlan(key[0], key[1], tuple(steps))
        return self._plans[key]

    def search(
        self, image: np.ndarray, *, bgr: bool = False, first_hit: bool = False
    ) -> List[Detection]:
        """All faces, largest first; `first_hit` stops after the first step that finds one."""
        height, width = image.shape[:2]
        found: List[Detection] = []
        steps = self.plan(width, height).steps
        for step, (name, regions) in enumerate(steps, 1):
            detector = self.short if name == SHORT_RANGE.name else self.tiler
            found.extend(detector.detect(image, regions, bgr=bgr))
            if first_hit and name == SHORT_RANGE.name:
                # A confident close-up needs no second look (the false head-and-shoulders
                # boxes scored 0.53-0.65): image mode keeps its one-call cost.
                side = max(width, height)
                sure = [d for d in found if d.score >= SURE and d.size >= BANDS[name][0] * side]
                if sure:
                    return sorted(sure, key=lambda d: -d.size)
            if (first_hit and found) or step == len(steps):
                refined = self.refine(image, _merge(found), bgr=bgr)
                if refined or step == len(steps):
                    return refined
        return []

    def refine(
        self, image: np.ndarray, candidates: Sequence[Detection], *, bgr: bool = False
    ) -> List[Detection]:
        """Each candidate re-found by the short-range model in a window around it, largest first.

        Coarse levels sometimes take a head and shoulders for a face (a box about twice the
        face, just below it); seen up close, that window holds the real face or nothing. The
        short-range model's keypoints at this scale are also the ones registration uses.
        """
        refined: List[Detection] = []
        for candidate in candidates:
            inside = [
                d
                for d in self.short.detect(image, [roi_region(candidate)], bgr=bgr)
                if _contains(candidate.box, d.centre)
            ]
            if inside:
                refined.append(max(inside, key=lambda d: d.score))
        return _merge(refined)

    def redetect(self, image: np.ndarray, last: Detection, *, bgr: bool = False) -> List[Detection]:
        """Faces in the window around a tracked face: one short-range call, any frame size."""
        return self.short.detect(image, [roi_region(last)], bgr=bgr)


def _contains(box: Tuple[float, float, float, float], point: Tuple[float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _merge(detections: Sequence[Detection]) -> List[Detection]:
    """One detection per face across steps and tiles, largest first."""
    if not detections:
        return []
    boxes = np.array([d.box for d in detections], dtype=np.float64)
    points = np.stack([d.keypoints for d in detections])
    scores = np.array([d.score for d in detections], dtype=np.float64)
    merged = [
        Detection(box=tuple(float(v) for v in box), keypoints=kps, score=score)  # type: ignore[arg-type]
        for box, kps, score in weighted_nms(boxes, points, scores, 0.3)
    ]
    return sorted(merged, key=lambda d: -d.size)
