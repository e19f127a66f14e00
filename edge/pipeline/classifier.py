"""Per-event inference through any Runner, and the runner a bundle asks for.

The pipeline never talks to a backend directly: it prepares the spec's inputs from the
registered frames of an event and calls `Runner.infer`, so ONNX Runtime, PyTorch and TensorRT are
interchangeable behind one `--backend` switch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional

import numpy as np

from edge.bundle import Bundle
from edge.classify import softmax
from edge.errors import EdgeBuildError
from edge.preprocess import prepare_inputs
from edge.runtime import BACKENDS, runner_class
from edge.runtime.base import Runner
from edge.spec import ModelSpec

__all__ = ["AU_OUTPUT", "EventPrediction", "EventClassifier", "make_runner"]

#: Name of the multi-label action-unit output (ModelSpec.au_names names its columns).
AU_OUTPUT = "au_logits"


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
        return str(getattr(self.runner, "executor", self.runner.name))

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


def _torch_model(bundle: Bundle, checkpoint: Optional[str]):
    """Rebuild the bundle's PyTorch model: the seeded demo, or the checkpoint it was built from."""
    from edge.models import architecture

    model_info = bundle.manifest["model"]
    arch = architecture(model_info["arch"])
    if checkpoint:
        loaded = arch.load(checkpoint, class_names=model_info.get("class_names"))
        expected = model_info.get("checkpoint_sha256")
        found = loaded.info.get("checkpoint_sha256")
        if expected and found and expected != found:
            raise EdgeBuildError(
                f"{checkpoint}: sha256 {found} differs from the checkpoint this bundle was built from ({expected})"
            )
        return loaded.model
    if model_info.get("demo_card") is not None:  # built from the shipped demo model
        loaded = arch.build_demo()
        if loaded.info.get("checkpoint_sha256") != model_info.get("checkpoint_sha256"):
            raise EdgeBuildError(
                f"{bundle.root}: built from another demo model than the one installed; pass --checkpoint"
            )
        return loaded.model
    if model_info.get("checkpoint") is None and model_info.get("seed") is not None:
        return arch.build_seeded(seed=int(model_info["seed"])).model
    raise EdgeBuildError(
        f"{bundle.root}: the torch backend needs the checkpoint this bundle was built from ({model_info.get('checkpoint')}); pass --checkpoint"
    )


def make_runner(
    bundle: Bundle,
    backend: str = "ort",
    *,
    precision: str = "fp32",
    threads: Optional[int] = None,
    checkpoint: Optional[str] = None,
) -> Runner:
    """The Runner for `backend` on this bundle (not yet active)."""
    if backend == "ort":
        cls = runner_class("ort")
        return cls(bundle.onnx_path(precision), providers="auto", threads=threads)
    if backend == "torch":
        cls = runner_class("torch")
        return cls(lambda: _torch_model(bundle, checkpoint), bundle.spec)
    if backend == "trt":
        # The TensorRT runner picks the engine matching this device from the bundle's manifest.
        return runner_class("trt")(bundle.root, precision=precision)
    raise EdgeBuildError(
        "unknown backend {!r}; available: {}".format(backend, ", ".join(sorted(BACKENDS)))
    )
