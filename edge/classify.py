"""Classify one onset/apex pair with a bundle's model: the smallest complete use of a bundle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Union

import numpy as np

from edge._lazy import require
from edge.bundle import Bundle
from edge.errors import EdgeBuildError
from edge.preprocess import prepare_inputs
from edge.runtime import runner_class

__all__ = ["Prediction", "read_frame", "softmax", "classify_pair"]


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    scores: Dict[str, float]
    logits: List[float]
    latency_ms: float
    executor: str


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


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
) -> Prediction:
    """Preprocess the frames as the bundle's spec says and run its model once."""
    spec = bundle.spec
    feeds = prepare_inputs(spec, frames)
    runner = runner_class(backend)(bundle.onnx_path(precision))
    with runner:
        outputs = runner.infer(feeds)
        latency = runner.last_latency_ms or 0.0
    logits = outputs[spec.outputs[0].name][0].astype(np.float64)
    probs = softmax(logits)
    index = int(np.argmax(logits))
    return Prediction(
        label=spec.class_names[index],
        index=index,
        scores={name: float(p) for name, p in zip(spec.class_names, probs)},
        logits=[float(v) for v in logits],
        latency_ms=latency,
        executor=getattr(runner, "executor", runner.name),
    )
