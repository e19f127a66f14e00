"""Face aligners: register a clip once on its onset frame, then warp every frame the same way.

Micro-expressions move the face by about a pixel; re-fitting landmarks per frame would inject
comparable jitter (~0.1 px per point, more for dlib), so one similarity transform is computed
on the onset (reference) frame and applied to all frames of the clip. A frame without a face is
a `NoFace` value, not an exception: live video has such frames all the time.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Protocol, Sequence, Tuple, Union

import numpy as np

from edge._lazy import require
from edge.align.detector import BlazeFace, Detection
from edge.align.mesh import FaceMesh
from edge.align.search import FaceSearch
from edge.align.template import (
    detector_four_points,
    detector_template_points,
    mesh_five_points,
    similarity_transform,
    template_points,
    warp_face,
)
from edge.align.tracker import Searcher
from edge.errors import EdgeBuildError, MissingDependencyError
from edge.preprocess import resize_frame

__all__ = [
    "NoFace",
    "Registration",
    "FaceAligner",
    "MediaPipeAligner",
    "DlibAligner",
    "PrecroppedAligner",
    "ALIGNERS",
    "make_aligner",
    "align_clip",
]

logger = logging.getLogger(__name__)

DLIB_PREDICTOR = "shape_predictor_5_face_landmarks.dat"
INSTALL_DLIB = "pip install dlib-bin"
INSTALL_DLIB_MODEL = "pip install --no-deps face-recognition-models"


@dataclass(frozen=True)
class NoFace:
    """No usable face in the frame; `reason` says which stage gave up."""

    reason: str

    def __bool__(self) -> bool:
        return False


@dataclass(frozen=True)
class Registration:
    """How a clip maps to the model's crop: `matrix` (2x3) takes image pixels to crop pixels."""

    matrix: np.ndarray
    size: Tuple[int, int]
    points: np.ndarray
    box: Tuple[float, float, float, float]
    score: float
    method: str

    def crop_corners(self) -> np.ndarray:
        """The crop's four corners in image pixels (for drawing the registered face)."""
        height, width = self.size
        full = np.vstack([self.matrix, [0.0, 0.0, 1.0]])
        inverse = np.linalg.inv(full)[:2]
        corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
        return corners @ inverse[:, :2].T + inverse[:, 2]


class FaceAligner(Protocol):
    """What the pipeline needs from an aligner."""

    name: str
    size: Tuple[int, int]

    def register(
        self,
        frame: np.ndarray,
        *,
        detection: Optional[Detection] = None,
        bgr: bool = False,
    ) -> Union[Registration, NoFace]: ...

    def warp(self, frame: np.ndarray, registration: Registration) -> np.ndarray: ...

    def faces(self) -> Searcher: ...


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        raise EdgeBuildError(
            f"aligners need an HxWx3 RGB frame, got {getattr(frame, 'shape', type(frame))}"
        )
    if frame.dtype != np.uint8:
        raise EdgeBuildError(f"aligners need a uint8 frame, got {frame.dtype}")


class _TemplateAligner:
    """Shared warp for aligners that fit a similarity transform to the template."""

    name = "template"

    def __init__(self, size: int) -> None:
        if size < 16:
            raise EdgeBuildError(f"crop size {size} is too small (minimum 16)")
        self.size = (int(size), int(size))

    def warp(self, frame: np.ndarray, registration: Registration) -> np.ndarray:
        _check_frame(frame)
        return warp_face(frame, registration.matrix, registration.size)


class MediaPipeAligner(_TemplateAligner):
    """Default: BlazeFace short-range + FaceMesh on OpenCV dnn, 5 points, ArcFace template.

    `landmarks="detector"` skips FaceMesh and fits the transform to four of BlazeFace's own
    keypoints (eyes, nose tip, mouth centre): about half the cost (measured: pair 3.6 ms against
    6.6-7.6 ms on one x86 core), with the fact sheet's larger keypoint jitter (0.15 px against
    0.10 px for mesh-derived points). Use it where the CPU budget is tight.

    Faces down to `min_face` px (BlazeFace box side) are found anywhere in the frame by
    `FaceSearch`; `faces()` hands that search to a `FaceTracker`.
    """

    name = "mediapipe"

    def __init__(
        self,
        size: int = 224,
        *,
        min_score: float = 0.5,
        mesh_min_score: float = 0.5,
        landmarks: str = "mesh",
        min_face: float = 48.0,
    ) -> None:
        super().__init__(size)
        if landmarks not in ("mesh", "detector"):
            raise EdgeBuildError(f"landmarks must be 'mesh' or 'detector', not {landmarks!r}")
        self.landmarks = landmarks
        self.detector = BlazeFace(min_score=min_score)
        self.search = FaceSearch(min_face=min_face, min_score=min_score, short=self.detector)
        self.mesh = FaceMesh(min_score=mesh_min_score) if landmarks == "mesh" else None

    def faces(self) -> FaceSearch:
        return self.search

    def register(
        self,
        frame: np.ndarray,
        *,
        detection: Optional[Detection] = None,
        bgr: bool = False,
    ) -> Union[Registration, NoFace]:
        """Register on `detection` (from a tracker), else on the largest face found.

        Everything here reads a window around the face, so a tracked face registers at the
        same cost in any frame size; `bgr=True` takes OpenCV's channel order as it is.
        """
        _check_frame(frame)
        if detection is None:
            found = self.search.search(frame, bgr=bgr, first_hit=True)
            if not found:
                return NoFace("no face detected")
            detection = found[0]
        if self.mesh is None:
            points = detector_four_points(detection.keypoints)
            template = detector_template_points(self.size[0])
            score, method = detection.score, "mediapipe-fast"
        else:
            mesh = self.mesh(frame, detection, bgr=bgr)
            if mesh is None:
                return NoFace(
                    f"face mesh rejected the detection (detector score {detection.score:.2f})"
                )
            points = mesh_five_points(mesh.points)
            template = template_points(self.size[0])
            score, method = min(detection.score, mesh.score), self.name
        return Registration(
            matrix=similarity_transform(points, template),
            size=self.size,
            points=points,
            box=detection.box,
            score=score,
            method=method,
        )


def _dlib_predictor_path() -> Path:
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(locations[0]) / "models" / DLIB_PREDICTOR if locations else None
    if path is None or not path.is_file():
        raise MissingDependencyError(
            f"{DLIB_PREDICTOR}: dlib's 5-point predictor is not installed; install it with: {INSTALL_DLIB_MODEL} (or pass predictor_path)"
        )
    return path


class DlibAligner(_TemplateAligner):
    """Fallback: dlib HOG detector + 5-point predictor; the two eye centres fix the similarity.

    dlib's 5 points are eye corners and the base of the nose (no mouth), so only the eye
    centres are matched to the template; the 68-point model is avoided for its licence.
    """

    name = "dlib"

    def __init__(
        self,
        size: int = 224,
        *,
        upsample: int = 1,
        predictor_path: Optional[Union[str, Path]] = None,
    ) -> None:
        super().__init__(size)
        self.upsample = int(upsample)
        self._predictor_path = Path(predictor_path) if predictor_path else None
        self._detector = None
        self._predictor = None

    def _load(self):
        if self._detector is None:
            try:
                dlib = require("dlib", purpose="the dlib face aligner")
            except MissingDependencyError as exc:
                raise MissingDependencyError(
                    f"dlib is needed for the dlib face aligner; install it with: {INSTALL_DLIB}"
                ) from exc
            path = self._predictor_path or _dlib_predictor_path()
            if not path.is_file():
                raise MissingDependencyError(f"{path}: dlib predictor file not found")
            self._predictor = dlib.shape_predictor(str(path))
            self._detector = dlib.get_frontal_face_detector()
        return self._detector, self._predictor

    def _detect(self, image: np.ndarray) -> List[Detection]:
        detector, _ = self._load()
        boxes, scores, _ = detector.run(image, self.upsample, 0.0)
        found = [
            Detection(
                box=(float(r.left()), float(r.top()), float(r.right()), float(r.bottom())),
                keypoints=np.zeros((0, 2)),
                score=float(score),
            )
            for r, score in zip(boxes, scores)
        ]
        return sorted(found, key=lambda d: -d.size)

    def faces(self) -> Searcher:
        return _WholeFrameSearch(lambda image: self._detect(_rgb_copy(image)))

    def register(
        self,
        frame: np.ndarray,
        *,
        detection: Optional[Detection] = None,
        bgr: bool = False,
    ) -> Union[Registration, NoFace]:
        _check_frame(frame)
        dlib = require("dlib", purpose="the dlib face aligner")
        _, predictor = self._load()
        image = np.ascontiguousarray(frame[:, :, ::-1] if bgr else frame)
        if detection is None:
            found = self._detect(image)
            if not found:
                return NoFace("no face detected (dlib HOG)")
            detection = max(found, key=lambda d: d.score)
        x0, y0, x1, y1 = (int(round(v)) for v in detection.box)
        rect = dlib.rectangle(x0, y0, x1, y1)
        shape = predictor(image, rect)
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)
        # dlib sp5: 0-1 eye on the image's right, 2-3 eye on the image's left, 4 nose base.
        eyes = np.stack([pts[2:4].mean(axis=0), pts[0:2].mean(axis=0)])
        matrix = similarity_transform(eyes, template_points(self.size[0])[:2])
        return Registration(
            matrix=matrix,
            size=self.size,
            points=eyes,
            box=detection.box,
            score=detection.score,
            method=self.name,
        )


class PrecroppedAligner:
    """For frames that are already registered face crops (CASME II `Cropped`): resize only."""

    name = "precropped"

    def __init__(self, size: int = 224) -> None:
        if size < 16:
            raise EdgeBuildError(f"crop size {size} is too small (minimum 16)")
        self.size = (int(size), int(size))

    def faces(self) -> Searcher:
        def whole(image: np.ndarray) -> List[Detection]:
            height, width = image.shape[:2]
            box = (0.0, 0.0, float(width), float(height))
            return [Detection(box=box, keypoints=np.zeros((0, 2)), score=1.0)]

        return _WholeFrameSearch(whole)

    def register(
        self,
        frame: np.ndarray,
        *,
        detection: Optional[Detection] = None,
        bgr: bool = False,
    ) -> Union[Registration, NoFace]:
        _check_frame(frame)
        height, width = frame.shape[:2]
        sx, sy = self.size[1] / float(width), self.size[0] / float(height)
        matrix = np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0]])
        box = (0.0, 0.0, float(width), float(height))
        return Registration(matrix, self.size, np.zeros((0, 2)), box, 1.0, self.name)

    def warp(self, frame: np.ndarray, registration: Registration) -> np.ndarray:
        _check_frame(frame)
        return resize_frame(frame, registration.size)


def _rgb_copy(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, :, ::-1])


class _WholeFrameSearch:
    """A `Searcher` for aligners without a window detector: the whole frame every time."""

    def __init__(self, detect: Callable[[np.ndarray], List[Detection]]) -> None:
        self._detect = detect

    def search(self, image: np.ndarray, *, bgr: bool = False) -> List[Detection]:
        return self._detect(image if bgr else image[:, :, ::-1])

    def redetect(self, image: np.ndarray, last: Detection, *, bgr: bool = False) -> List[Detection]:
        return self.search(image, bgr=bgr)


ALIGNERS = {
    "mediapipe": MediaPipeAligner,
    "mediapipe-fast": lambda size=224, **kw: MediaPipeAligner(size, landmarks="detector", **kw),
    "dlib": DlibAligner,
    "precropped": PrecroppedAligner,
}


def make_aligner(name: str, size: int = 224, *, min_face: Optional[float] = None) -> FaceAligner:
    """An aligner by name (`mediapipe`, `mediapipe-fast`, `dlib`, `precropped`); `min_face`
    (px) sets the smallest face the MediaPipe aligners search for."""
    if name not in ALIGNERS:
        raise EdgeBuildError(
            "unknown aligner {!r}; available: {}".format(name, ", ".join(sorted(ALIGNERS)))
        )
    if min_face is not None and name.startswith("mediapipe"):
        return ALIGNERS[name](size, min_face=min_face)
    return ALIGNERS[name](size)


def align_clip(
    aligner: FaceAligner, frames: Sequence[np.ndarray], *, reference: int = 0
) -> Union[List[np.ndarray], NoFace]:
    """Register on `frames[reference]` (the onset) and warp every frame with that transform."""
    if not 0 <= reference < len(frames):
        raise EdgeBuildError(f"reference frame {reference} is outside the clip of {len(frames)}")
    registration = aligner.register(frames[reference])
    if isinstance(registration, NoFace):
        logger.info("clip not aligned: %s", registration.reason)
        return registration
    return [aligner.warp(frame, registration) for frame in frames]
