"""Per-event inference through any Runner: video, camera and image mode all classify here.

The pipeline never talks to a backend directly: it prepares the spec's inputs from the
registered frames of an event and calls `Runner.infer`, so ONNX Runtime, PyTorch and TensorRT are
interchangeable behind one `--backend` switch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional

import numpy as np

from edge.preprocess import prepare_inputs
from edge.runtime import make_runner
from edge.runtime.base import Runner
from edge.spec import ModelSpec

__all__ = ["AU_OUTPUT", "EventPrediction", "EventClassifier", "make_runner", "softmax"]

#: Name of the multi-label action-unit output (ModelSpec.au_names names its columns).
AU_OUTPUT = "au_logits"


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class EventPrediction:
    label: str
    scores: Dict[str, float]
    logits: List[float]
    preprocess_ms: float
    infer_ms: float
    #: AU name -> probability, for models with a multi-label AU head (FAMNet)
    au_scores: Optional[Dict[str, float]] = None


class EventClassifier:
    """Classifies one event from its registered frames (role -> RGB crop or relative depth)
    with an active Runner."""

    def __init__(self, runner: Runner, spec: ModelSpec) -> None:
        self.runner = runner
        self.spec = spec

    @property
    def executor(self) -> str:
        return self.runner.executor

    def __call__(
        self,
        frames: Mapping[str, np.ndarray],
        normalized: Optional[Mapping[str, np.ndarray]] = None,
    ) -> EventPrediction:
        """`normalized`: colour roles already warped and normalised (`edge.native`)."""
        start = time.perf_counter_ns()
        feeds = prepare_inputs(self.spec, frames, normalized)
        prepared = time.perf_counter_ns()
        outputs = self.runner.infer(feeds)
        done = time.perf_counter_ns()
        logits = np.asarray(outputs[self.spec.outputs[0].name])[0].astype(np.float64)
        probs = softmax(logits)
        index = int(np.argmax(logits))
        infer_ms = self.runner.last_latency_ms
        au_scores = None
        if self.spec.au_names and AU_OUTPUT in outputs:
            au = 1.0 / (1.0 + np.exp(-np.asarray(outputs[AU_OUTPUT])[0].astype(np.float64)))
            au_scores = {n: float(p) for n, p in zip(self.spec.au_names, au)}
        return EventPrediction(
            label=self.spec.class_names[index],
            scores={n: float(p) for n, p in zip(self.spec.class_names, probs)},
            logits=[float(v) for v in logits],
            preprocess_ms=(prepared - start) / 1e6,
            infer_ms=float(infer_ms) if infer_ms is not None else (done - prepared) / 1e6,
            au_scores=au_scores,
        )
