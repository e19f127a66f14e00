"""Classify one onset/apex pair with a bundle's model: the smallest complete use of a bundle.

Image mode runs the same `make_runner` and `EventClassifier` as video mode, so every backend
behaves the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

import numpy as np

from edge._lazy import require
from edge.bundle import Bundle
from edge.errors import EdgeBuildError
from edge.pipeline.classifier import EventClassifier, softmax
from edge.runtime import make_runner

__all__ = ["Prediction", "read_frame", "softmax", "classify_pair"]


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    scores: Dict[str, float]
    logits: List[float]
    latency_ms: float
    executor: str


def read_frame(path: Union[str, Path], color: str = "RGB") -> np.ndarray:
    """Read an image file as HxWx3 uint8 in `color` order; a clear error when unreadable."""
    cv2 = require("cv2", purpose="reading images")
    path = Path(path)
    if not path.is_file():
        raise EdgeBuildError(f"{path}: image not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise EdgeBuildError(f"{path}: not a readable image")
    return image[:, :, ::-1].copy() if color == "RGB" else image


def classify_pair(
    bundle: Bundle,
    frames: Mapping[str, np.ndarray],
    *,
    backend: str = "ort",
    precision: str = "fp32",
    threads: Optional[int] = None,
    checkpoint: Optional[str] = None,
) -> Prediction:
    """Preprocess the frames as the bundle's spec says and run its model once."""
    runner = make_runner(bundle, backend, precision, threads=threads, checkpoint=checkpoint)
    with runner:
        classifier = EventClassifier(runner, bundle.spec)
        event = classifier(frames)
        executor = classifier.executor
    return Prediction(
        label=event.label,
        index=int(np.argmax(event.logits)),
        scores=event.scores,
        logits=event.logits,
        latency_ms=event.infer_ms,
        executor=executor,
    )
