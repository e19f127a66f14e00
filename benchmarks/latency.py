"""Latency of any Runner: warm-up by count and time, then percentiles (numpy only)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping

import numpy as np

__all__ = ["LatencyResult", "measure_latency", "percentiles"]


@dataclass(frozen=True)
class LatencyResult:
    executor: str
    iterations: int
    warmup_iterations: int
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    throughput_per_s: float

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def percentiles(samples_ms: np.ndarray) -> Dict[str, float]:
    """Linear-interpolated percentiles (numpy's default), the convention trtexec also uses."""
    values = np.percentile(samples_ms, [50, 90, 95, 99])
    return {
        "p50": float(values[0]),
        "p90": float(values[1]),
        "p95": float(values[2]),
        "p99": float(values[3]),
    }


def measure_latency(
    runner,
    feeds: Mapping[str, np.ndarray],
    *,
    iterations: int = 50,
    warmup_iterations: int = 5,
    warmup_seconds: float = 0.2,
) -> LatencyResult:
    """Time `runner.infer` (already active) after warming up for a count and a duration."""
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    start = time.perf_counter()
    done = 0
    while done < warmup_iterations or time.perf_counter() - start < warmup_seconds:
        runner.infer(feeds, check=False)
        done += 1
    samples = np.empty(iterations)
    for i in range(iterations):
        t0 = time.perf_counter_ns()
        runner.infer(feeds, check=False)
        samples[i] = (time.perf_counter_ns() - t0) / 1e6
    pct = percentiles(samples)
    mean = float(samples.mean())
    return LatencyResult(
        executor=getattr(runner, "executor", runner.name),
        iterations=iterations,
        warmup_iterations=done,
        p50_ms=pct["p50"],
        p90_ms=pct["p90"],
        p95_ms=pct["p95"],
        p99_ms=pct["p99"],
        mean_ms=mean,
        std_ms=float(samples.std()),
        throughput_per_s=1000.0 / mean if mean > 0 else float("inf"),
    )
