"""Latency statistics and pixel-noise inputs against hand-computed cases (numpy only)."""

from __future__ import annotations

from typing import Dict, Mapping

import numpy as np
import pytest

from benchmarks.accuracy import with_pixel_noise
from benchmarks.latency import (
    batch_support,
    measure_latency,
    percentiles,
    summarize,
    tile_batch,
)
from edge.errors import EdgeBuildError
from edge.runtime.base import Runner
from edge.spec import TensorSpec


# latency ---------------------------------------------------------------------------------------
def test_percentiles_interpolate_linearly():
    pct = percentiles(list(range(1, 11)))
    assert pct == pytest.approx({"p50": 5.5, "p90": 9.1, "p95": 9.55, "p99": 9.91})
    s = summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert s["mean"] == pytest.approx(5.0) and s["std"] == pytest.approx(2.0)
    assert s["min"] == 2.0 and s["max"] == 9.0
    with pytest.raises(EdgeBuildError):
        summarize([])


def test_batch_support_and_tiling():
    fixed = {"onset": TensorSpec("onset", (1, 3, 4, 4))}
    dynamic = {"onset": TensorSpec("onset", ("batch", 3, 4, 4))}
    assert batch_support(fixed, 1) is None
    assert "fixed batch of 1" in batch_support(fixed, 4)
    assert batch_support(dynamic, 8) is None
    assert "not positive" in batch_support(dynamic, 0)
    tiled = tile_batch({"onset": np.arange(3, dtype=np.float32)[None]}, 4)
    assert tiled["onset"].shape == (4, 3) and (tiled["onset"] == [0, 1, 2]).all()


class MatmulRunner(Runner):
    """A real Runner (numpy matmul). With `stages` it also reports a per-stage split the way a
    TensorRT runner does through `last_stages_ms` (values derived from its own timing)."""

    name = "numpy-matmul"

    def __init__(self, stages: bool = False) -> None:
        super().__init__()
        self._w = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
        self._stages = stages
        self.calls = 0
        self.last_stages_ms = None

    @property
    def executor(self) -> str:
        return "numpy " + np.__version__

    def _activate(self) -> None:
        pass

    def _deactivate(self) -> None:
        pass

    def _inputs(self) -> Dict[str, TensorSpec]:
        return {"x": TensorSpec("x", ("batch", 64))}

    def _outputs(self) -> Dict[str, TensorSpec]:
        return {"y": TensorSpec("y", ("batch", 8))}

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        self.calls += 1
        y = feeds["x"] @ self._w
        if self._stages:
            self.last_stages_ms = {"h2d": 0.01, "compute": 0.02 * self.calls, "d2h": 0.01}
        return {"y": y}


def test_measure_latency_counts_warmup_and_iterations():
    feeds = {"x": np.ones((1, 64), np.float32)}
    with MatmulRunner() as runner:
        res = measure_latency(
            runner, feeds, iterations=7, warmup_iterations=3, warmup_seconds=0.0, batch=1
        )
        assert runner.calls == 3 + 7
    assert res.iterations == 7 and res.warmup_iterations == 3
    assert len(res.samples_ms) == 7 and res.executor.startswith("numpy ")
    assert res.p50_ms <= res.p90_ms <= res.p95_ms <= res.p99_ms <= res.max_ms
    assert res.throughput_per_s == pytest.approx(1000.0 / res.mean_ms)
    assert res.stages == {}


def test_measure_latency_duration_and_stages():
    feeds = tile_batch({"x": np.ones((1, 64), np.float32)}, 4)
    seen = []
    with MatmulRunner(stages=True) as runner:
        res = measure_latency(
            runner,
            feeds,
            iterations=2,
            duration_s=0.05,
            warmup_iterations=0,
            warmup_seconds=0.0,
            batch=4,
            preprocess=lambda: seen.append("pre"),
            postprocess=lambda out: seen.append(out["y"].shape),
        )
        calls = runner.calls
    assert res.measured_s >= 0.05 and res.iterations == calls >= 2
    assert res.throughput_per_s == pytest.approx(4 * 1000.0 / res.mean_ms)
    assert set(res.stages) == {"preprocess", "h2d", "compute", "d2h", "postprocess"}
    assert res.stages["h2d"]["mean_ms"] == pytest.approx(0.01)
    # compute grows 0.02 ms per call: its mean is the mean of 0.02 * (1..n)
    assert res.stages["compute"]["mean_ms"] == pytest.approx(0.02 * (calls + 1) / 2)
    assert seen.count("pre") == calls and seen.count((4, 8)) == calls
    with pytest.raises(EdgeBuildError, match="iterations"):
        measure_latency(runner, feeds, iterations=0)


def test_pixel_noise_touches_image_inputs_only_in_pixel_units():
    std = (0.229, 0.224, 0.225)
    feed = {
        "apex": np.zeros((1, 3, 64, 64), np.float32),
        "mask": np.zeros((1, 1, 8, 8), np.float32),
    }
    (noisy,) = with_pixel_noise([feed], std, 2.0, seed=0)
    assert noisy["apex"].dtype == np.float32 and not noisy["mask"].any()
    measured = noisy["apex"].std(axis=(0, 2, 3)) * np.asarray(std) * 255.0
    np.testing.assert_allclose(measured, 2.0, rtol=0.05)  # 2 gray levels per channel
    assert not feed["apex"].any()  # the input is not modified
