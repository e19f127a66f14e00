"""Latency of any Runner: warm-up by count and time, a measured count or duration, percentiles.

numpy only, so the same harness times ONNX Runtime on a host and TensorRT on a Jetson. The
warm-up and the measured phase each stop when *both* their count and their duration are
reached (trtexec's `--warmUp`/`--iterations`/`--duration` semantics), so a fast model is not
timed on a handful of runs and a slow one is not held for thousands.

Stage breakdown: every Runner reports `last_stages_ms` (stage name -> milliseconds) after each
`infer`, for the stages it can separate (TensorRT: host->device, compute and device->host by
CUDA events; ONNX Runtime and PyTorch: compute), and `last_gpu_ms` where CUDA events timed the
GPU work. Stages outside the runner (`preprocess`, `postprocess`) are timed by this harness when
the caller passes them as callables.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from edge.errors import EdgeBuildError
from edge.runtime.base import STAGES as RUNNER_STAGES  # what a runner's last_stages_ms holds

__all__ = [
    "STAGES",
    "RUNNER_STAGES",
    "LatencyResult",
    "measure_latency",
    "percentiles",
    "summarize",
    "batch_support",
    "tile_batch",
]

#: Pipeline stages in order; reports show those measured and leave the others out.
STAGES = ("align", "preprocess", "h2d", "compute", "d2h", "postprocess")

Feeds = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class LatencyResult:
    """Per-inference latency of one runner at one batch size (milliseconds)."""

    executor: str
    batch: int
    iterations: int
    warmup_iterations: int
    warmup_s: float
    measured_s: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    throughput_per_s: float
    timer: str = "host perf_counter_ns around Runner.infer"
    stages: Dict[str, Dict[str, float]] = field(default_factory=dict)
    samples_ms: List[float] = field(default_factory=list)
    #: GPU compute per inference timed by CUDA events (mean/p50/p99); empty on CPU executors.
    gpu_ms: Dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def percentiles(samples_ms: Sequence[float]) -> Dict[str, float]:
    """p50/p90/p95/p99 by linear interpolation (numpy's default, as trtexec reports them)."""
    values = np.percentile(np.asarray(samples_ms, dtype=np.float64), [50, 90, 95, 99])
    return {
        "p50": float(values[0]),
        "p90": float(values[1]),
        "p95": float(values[2]),
        "p99": float(values[3]),
    }


def summarize(samples_ms: Sequence[float]) -> Dict[str, float]:
    """Mean, std (population), min, max and the percentiles of one series."""
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0:
        raise EdgeBuildError("no latency samples to summarize")
    out = {"mean": float(values.mean()), "std": float(values.std())}
    out.update(percentiles(values))
    out.update({"min": float(values.min()), "max": float(values.max())})
    return out


def batch_support(input_specs: Mapping[str, Any], batch: int) -> Optional[str]:
    """None when every input accepts `batch` rows, else the reason it does not.

    A string (or None) first dimension is dynamic; an int is fixed by the model.
    """
    if batch < 1:
        return f"batch size {batch} is not positive"
    for name, spec in input_specs.items():
        shape = tuple(spec.shape)
        if not shape:
            return f"input {name!r} is a scalar"
        first = shape[0]
        if isinstance(first, int) and first != batch:
            return f"input {name!r} has a fixed batch of {first} (export with --dynamic-batch)"
    return None


def tile_batch(feeds: Feeds, batch: int) -> Dict[str, np.ndarray]:
    """Repeat batch-1 feeds along axis 0 to `batch` rows (same data: latency only)."""
    out = {}
    for name, value in feeds.items():
        array = np.asarray(value)
        if array.shape[0] != 1:
            raise EdgeBuildError(f"input {name!r}: tiling needs batch-1 feeds, got {array.shape}")
        out[name] = np.ascontiguousarray(np.repeat(array, batch, axis=0))
    return out


def _loop(
    step: Callable[[], None], min_count: int, min_seconds: float
) -> Tuple[int, float, List[float]]:
    """Call `step` until both `min_count` calls and `min_seconds` have passed."""
    samples: List[float] = []
    start = time.perf_counter()
    count = 0
    while count < min_count or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter_ns()
        step()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        count += 1
    return count, time.perf_counter() - start, samples


def measure_latency(
    runner,
    feeds: Feeds,
    *,
    iterations: int = 50,
    duration_s: float = 0.0,
    warmup_iterations: int = 5,
    warmup_seconds: float = 0.2,
    batch: int = 1,
    preprocess: Optional[Callable[[], Any]] = None,
    postprocess: Optional[Callable[[Dict[str, np.ndarray]], Any]] = None,
    keep_samples: bool = True,
) -> LatencyResult:
    """Time `runner.infer` (the runner is already active) on `feeds`.

    Args:
        runner: an active Runner; `executor` names it in the result when present.
        feeds: name -> array with `batch` rows.
        iterations: at least this many measured inferences.
        duration_s: and at least this long measuring (0: count only).
        warmup_iterations: at least this many untimed inferences first.
        warmup_seconds: and at least this long warming up.
        batch: rows per inference, for throughput (samples per second).
        preprocess: timed as the `preprocess` stage once per iteration (e.g. frame -> tensor).
        postprocess: timed as the `postprocess` stage on each output (e.g. softmax + argmax).
        keep_samples: keep every sample in the result (for distribution plots).

    Returns:
        The summary of the measured phase; stages hold the mean/p50/p99 of each stage seen.

    Raises:
        EdgeBuildError: a count or duration is out of range.
    """
    if iterations < 1:
        raise EdgeBuildError(f"iterations must be >= 1, got {iterations}")
    if duration_s < 0 or warmup_seconds < 0 or warmup_iterations < 0:
        raise EdgeBuildError("warm-up and duration must not be negative")
    stage_samples: Dict[str, List[float]] = {}
    gpu_samples: List[float] = []

    def record(name: str, value: float) -> None:
        stage_samples.setdefault(name, []).append(float(value))

    def warm() -> None:
        runner.infer(feeds, check=False)

    def step() -> None:
        if preprocess is not None:
            t0 = time.perf_counter_ns()
            preprocess()
            record("preprocess", (time.perf_counter_ns() - t0) / 1e6)
        outputs = runner.infer(feeds, check=False)
        for name, value in (runner.last_stages_ms or {}).items():
            record(name, value)
        if runner.last_gpu_ms is not None:
            gpu_samples.append(float(runner.last_gpu_ms))
        if postprocess is not None:
            t0 = time.perf_counter_ns()
            postprocess(outputs)
            record("postprocess", (time.perf_counter_ns() - t0) / 1e6)

    warm_count, warm_s, _ = _loop(warm, warmup_iterations, warmup_seconds)
    # The sample is the runner's own measurement of infer, so preprocess/postprocess timing
    # in `step` does not leak into the model's latency.
    infer_samples: List[float] = []

    def measured() -> None:
        step()
        infer_samples.append(float(runner.last_latency_ms))

    count, measured_s, _ = _loop(measured, iterations, duration_s)
    stats = summarize(infer_samples)
    stages = {}
    for name, values in stage_samples.items():
        s = summarize(values)
        stages[name] = {"mean_ms": s["mean"], "p50_ms": s["p50"], "p99_ms": s["p99"]}
    timer = getattr(runner, "latency_timer", None) or LatencyResult.timer
    gpu: Dict[str, float] = {}
    if gpu_samples:
        g = summarize(gpu_samples)
        gpu = {"mean_ms": g["mean"], "p50_ms": g["p50"], "p99_ms": g["p99"]}
    return LatencyResult(
        executor=str(runner.executor),
        batch=batch,
        iterations=count,
        warmup_iterations=warm_count,
        warmup_s=warm_s,
        measured_s=measured_s,
        p50_ms=stats["p50"],
        p90_ms=stats["p90"],
        p95_ms=stats["p95"],
        p99_ms=stats["p99"],
        mean_ms=stats["mean"],
        std_ms=stats["std"],
        min_ms=stats["min"],
        max_ms=stats["max"],
        throughput_per_s=batch * 1000.0 / stats["mean"] if stats["mean"] > 0 else float("inf"),
        timer=str(timer),
        stages=stages,
        samples_ms=[round(v, 6) for v in infer_samples] if keep_samples else [],
        gpu_ms=gpu,
    )
