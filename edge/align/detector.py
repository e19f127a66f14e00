"""BlazeFace short-range face detection through OpenCV dnn: anchors, decode, weighted NMS.

MediaPipe's detector runs in ~2 ms on one CPU core and needs no TensorFlow; this is the decode
MediaPipe's `TfLiteTensorsToDetectionsCalculator` performs, for the short-range model
(128x128 input, 896 anchors at strides 8 and 16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from edge._lazy import require
from edge.align.models import DETECTOR_FILE, model_path, read_tflite
from edge.errors import EdgeBuildError

__all__ = ["Detection", "BlazeFace", "ssd_anchors", "weighted_nms"]

INPUT_SIZE = 128
SCORE_CLIP = 100.0


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


def ssd_anchors(input_size: int = INPUT_SIZE) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1]: 2 per cell at stride 8, 6 per cell at stride 16."""
    anchors = []
    for stride, per_cell in ((8, 2), (16, 6)):
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


class BlazeFace:
    """`detector(rgb) -> [Detection, ...]`, best first; the model loads on first call."""

    def __init__(self, *, min_score: float = 0.5, iou: float = 0.3) -> None:
        self.min_score = min_score
        self.iou = iou
        self._net = None
        self._anchors = ssd_anchors()

    def _load(self):
        if self._net is None:
            self._net = read_tflite(model_path(DETECTOR_FILE))
        return self._net

    def _blob(self, rgb: np.ndarray) -> Tuple[np.ndarray, float, float, float]:
        """Letterbox into a centred square, resize to 128, scale to [-1, 1], NCHW."""
        cv2 = require("cv2", purpose="face detection")
        height, width = rgb.shape[:2]
        scale = INPUT_SIZE / float(max(height, width))
        new_w = max(1, int(round(width * scale)))
        new_h = max(1, int(round(height * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(rgb, (new_w, new_h), interpolation=interp)
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.float32)
        pad_x = (INPUT_SIZE - new_w) // 2
        pad_y = (INPUT_SIZE - new_h) // 2
        canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = small * (1.0 / 127.5) - 1.0
        return canvas.transpose(2, 0, 1)[None].copy(), scale, float(pad_x), float(pad_y)

    def __call__(self, rgb: np.ndarray) -> List[Detection]:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise EdgeBuildError(
                f"face detection needs an HxWx3 uint8 RGB frame, got {rgb.dtype} {rgb.shape}"
            )
        net = self._load()
        blob, scale, pad_x, pad_y = self._blob(rgb)
        net.setInput(blob)
        outputs = net.forward(net.getUnconnectedOutLayersNames())
        by_size = {int(np.asarray(o).size): np.asarray(o, dtype=np.float32) for o in outputs}
        anchors = len(self._anchors)
        if anchors not in by_size or anchors * 16 not in by_size:
            raise EdgeBuildError(
                f"{DETECTOR_FILE}: unexpected outputs {sorted(by_size)}; the model file does not match BlazeFace short-range"
            )
        logits = np.clip(by_size[anchors].reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.nonzero(scores > self.min_score)[0]
        if keep.size == 0:
            return []
        reg = by_size[anchors * 16].reshape(-1, 16)[keep] / INPUT_SIZE
        anchor = self._anchors[keep]
        centre = reg[:, 0:2] + anchor
        half = reg[:, 2:4] / 2.0
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        kps = reg[:, 4:16].reshape(-1, 6, 2) + anchor[:, None, :]
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        merged = weighted_nms(boxes[valid], kps[valid], scores[keep][valid], self.iou)

        def to_pixels(xy: np.ndarray) -> np.ndarray:
            out = np.array(xy, dtype=np.float64).reshape(-1, 2) * INPUT_SIZE
            out[:, 0] = (out[:, 0] - pad_x) / scale
            out[:, 1] = (out[:, 1] - pad_y) / scale
            return out

        detections = []
        for box, points, score in merged:
            corners = to_pixels(box)
            detections.append(
                Detection(
                    box=(
                        float(corners[0, 0]),
                        float(corners[0, 1]),
                        float(corners[1, 0]),
                        float(corners[1, 1]),
                    ),
                    keypoints=to_pixels(points),
                    score=score,
                )
            )
        return detections

    def best(self, rgb: np.ndarray) -> Optional[Detection]:
        """The highest-scoring face, or None."""
        found = self(rgb)
        return found[0] if found else None
