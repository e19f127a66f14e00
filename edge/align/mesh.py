"""MediaPipe FaceMesh (468 points) on a rotated face ROI, through OpenCV dnn.

The ROI is MediaPipe's: the detection box centre, side 1.5 x the longer box side, rotated so
the eyes are level; it is warped to 192x192, and the landmarks are mapped back to the image by
the same affine transform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from edge._lazy import require
from edge.align.detector import Detection
from edge.align.models import MESH_FILE, model_path, read_tflite
from edge.errors import EdgeBuildError

__all__ = ["MeshResult", "FaceMesh", "roi_transform"]

INPUT_SIZE = 192
NUM_POINTS = 468
ROI_SCALE = 1.5


@dataclass(frozen=True)
class MeshResult:
    """468 landmarks (x, y, z) in image pixels and the mesh's face-presence score."""

    points: np.ndarray
    score: float


def roi_transform(detection: Detection, size: int = INPUT_SIZE) -> np.ndarray:
    """2x3 affine mapping ROI-crop pixels to image pixels (rotation from the eye keypoints)."""
    x0, y0, x1, y1 = detection.box
    centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    side = ROI_SCALE * max(x1 - x0, y1 - y0)
    left_eye, right_eye = detection.keypoints[0], detection.keypoints[1]
    angle = math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0])
    ex = np.array([math.cos(angle), math.sin(angle)]) * (side / size)
    ey = np.array([-math.sin(angle), math.cos(angle)]) * (side / size)
    origin = centre - (ex + ey) * (size / 2.0)
    return np.stack([ex, ey, origin], axis=1)


class FaceMesh:
    """`mesh(rgb, detection) -> MeshResult | None` (None when the mesh rejects the face)."""

    def __init__(self, *, min_score: float = 0.5) -> None:
        self.min_score = min_score
        self._net = None

    def _load(self):
        if self._net is None:
            self._net = read_tflite(model_path(MESH_FILE))
        return self._net

    def __call__(
        self, rgb: np.ndarray, detection: Detection, *, bgr: bool = False
    ) -> Optional[MeshResult]:
        cv2 = require("cv2", purpose="face landmarks")
        net = self._load()
        crop_to_image = roi_transform(detection)
        crop = cv2.warpAffine(
            rgb,
            crop_to_image,
            (INPUT_SIZE, INPUT_SIZE),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
        )
        if bgr:  # only the crop changes channel order, not the frame
            crop = crop[:, :, ::-1]
        blob = (crop.astype(np.float32) * (1.0 / 255.0)).transpose(2, 0, 1)[None].copy()
        net.setInput(blob)
        outputs = net.forward(net.getUnconnectedOutLayersNames())
        by_size = {int(np.asarray(o).size): np.asarray(o, dtype=np.float32) for o in outputs}
        if NUM_POINTS * 3 not in by_size or 1 not in by_size:
            raise EdgeBuildError(
                f"{MESH_FILE}: unexpected outputs {sorted(by_size)}; the model file does not match FaceMesh"
            )
        logit = float(np.clip(by_size[1].reshape(-1)[0], -100.0, 100.0))
        score = 1.0 / (1.0 + math.exp(-logit))
        if score < self.min_score:
            return None
        raw = by_size[NUM_POINTS * 3].reshape(NUM_POINTS, 3).astype(np.float64)
        points = raw.copy()
        points[:, :2] = raw[:, :2] @ crop_to_image[:, :2].T + crop_to_image[:, 2]
        points[:, 2] = raw[:, 2] * float(np.linalg.norm(crop_to_image[:, 0]))
        return MeshResult(points=points, score=score)
