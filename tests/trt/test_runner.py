"""TrtRunner against fakes of every release's real names and a host-memory CUDA runtime."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge.engine import engine_from_bundle
from edge.errors import BundleError, IncompatibleEngineError
from edge.runtime import runner_class
from edge.runtime.base import RunnerError
from edge.runtime.trt import TrtRunner
from tests.trt.conftest import ORIN, make_bundle
from tests.trt.fake_cuda import FakeCudart
from tests.trt.fake_engine import fake_engine as make_engine
from tests.trt.fake_tensorrt import make_fake

RELEASES = ["8.5", "8.6", "10.3", "10.13", "10.16", "11.4"]
SHAPES = {"onset": (1, 3, 4, 4), "apex": (1, 3, 4, 4), "logits": (1, 5)}


def expected_logits(onset, apex):
    diff = (apex - onset).reshape(1, 3, -1)
    return np.concatenate([diff.sum(axis=2), diff.max(axis=2)[:, :2]], axis=1)


def fake_engine(release):
    """A fake `tensorrt` whose engine reads its inputs from device memory and writes logits."""
    return make_engine(
        release,
        {"onset": SHAPES["onset"], "apex": SHAPES["apex"]},
        {"logits": SHAPES["logits"]},
        lambda feeds: {"logits": expected_logits(feeds["onset"], feeds["apex"])},
    )


@pytest.fixture
def feeds():
    rng = np.random.default_rng(0)
    return {n: rng.standard_normal(SHAPES[n]).astype(np.float32) for n in ("onset", "apex")}


def built_bundle(tmp_path, release):
    root = make_bundle(tmp_path / "b", {"fp32": "model.fp32.onnx"}, "8.5").root
    engine_from_bundle(root, "fp32", trt=fake_engine(release), device=ORIN)
    return root


@pytest.mark.parametrize("release", RELEASES)
def test_runner_runs_the_bundle_engine(release, tmp_path, feeds):
    root = built_bundle(tmp_path, release)
    fake, cudart = fake_engine(release), FakeCudart()
    runner = TrtRunner(root, trt_module=fake, cudart=cudart, device=ORIN)
    with runner:
        assert set(runner.inputs) == {"onset", "apex"}
        assert runner.outputs["logits"].shape == (1, 5)
        out = runner.infer(feeds)
        np.testing.assert_allclose(
            out["logits"], expected_logits(feeds["onset"], feeds["apex"]), rtol=1e-6
        )
        assert runner.last_gpu_ms == 0.25 and runner.last_latency_ms is not None
        with pytest.raises(RunnerError, match="missing"):
            runner.infer({"onset": feeds["onset"]})
    assert runner.engine_entry["key"]["tensorrt"] == fake.__version__
    kinds = [c[1][0] for c in cudart.calls if c[0] == "cudaMemcpyAsync"]
    assert kinds == [1, 1, 2]  # two host->device copies, one device->host, on one stream
    assert len(cudart.freed) == 6  # 3 pinned host + 3 device buffers released
    assert [c.name for c in fake.called("execute_async_v3")] == ["execute_async_v3"]


def test_cuda_graph_replays_after_the_first_run(tmp_path, feeds):
    root = built_bundle(tmp_path, "10.3")
    cudart = FakeCudart()
    with TrtRunner(
        root, trt_module=fake_engine("10.3"), cudart=cudart, device=ORIN, cuda_graph=True
    ) as r:
        for _ in range(3):
            r.infer(feeds)
    names = [c[0] for c in cudart.calls]
    assert names.count("cudaStreamBeginCapture") == 1 and names.count("cudaGraphLaunch") == 2


def test_registry_knows_trt():
    assert runner_class("trt") is TrtRunner


def test_engine_for_another_device_is_refused_before_deserializing(tmp_path):
    root = built_bundle(tmp_path, "10.3")
    nano = dataclasses.replace(ORIN, model="NVIDIA Jetson Orin Nano", compute_capability="8.7")
    fake = fake_engine("10.3")
    with pytest.raises(IncompatibleEngineError) as info:
        TrtRunner(root, trt_module=fake, cudart=FakeCudart(), device=nano).activate()
    message = str(info.value)
    assert "AGX Orin" in message and "Orin Nano" in message
    assert "python3 -m edge.cli.engine --bundle " + str(root) + " --precision fp32" in message
    assert fake.called("deserialize_cuda_engine") == []


def test_engine_for_another_tensorrt_is_refused(tmp_path):
    root = built_bundle(tmp_path, "10.3")
    with pytest.raises(IncompatibleEngineError, match="TensorRT 10.3.0 vs 10.16.1.11"):
        TrtRunner(
            root, trt_module=fake_engine("10.16"), cudart=FakeCudart(), device=ORIN
        ).activate()


def test_missing_precision_and_undeserializable_bytes(tmp_path):
    root = built_bundle(tmp_path, "10.3")
    with pytest.raises(BundleError, match="no int8 engine"):
        TrtRunner(
            root, precision="int8", trt_module=fake_engine("10.3"), cudart=FakeCudart(), device=ORIN
        ).activate()
    with pytest.raises(IncompatibleEngineError, match="cannot deserialize"):
        TrtRunner(b"other", trt_module=fake_engine("10.3"), cudart=FakeCudart()).activate()


@pytest.mark.parametrize(
    "release, has_v2",
    [("8.5", True), ("8.6", True), ("10.3", False), ("10.16", False), ("11.4", False)],
)
def test_bindings_api_call_fails_where_removed(release, has_v2):
    """The old `execute_async_v2` exists only on 8.x: a runner using it would fail on 10/11."""
    context = make_fake(release).IExecutionContext
    if has_v2:
        context.execute_async_v2([], 0)
    else:
        with pytest.raises(AttributeError, match="execute_async_v2"):
            context.execute_async_v2([], 0)


def test_stages_are_timed_by_cuda_events_around_copies_and_compute(tmp_path, feeds):
    root = built_bundle(tmp_path, "10.3")
    cudart = FakeCudart()
    with TrtRunner(root, trt_module=fake_engine("10.3"), cudart=cudart, device=ORIN) as runner:
        runner.infer(feeds)
        assert runner.last_stages_ms == {"h2d": 0.25, "compute": 0.25, "d2h": 0.25}
        assert runner.last_gpu_ms == runner.last_stages_ms["compute"]
        engine = str(root / runner.engine_entry["file"])
        assert runner.executor.startswith("TensorRT 10.3") and runner.executor.endswith(
            f"({engine})"
        )
    # one event before the host->device copies, one each side of the enqueue, one after d2h
    steps = [
        "copy" if name == "cudaMemcpyAsync" else "event"
        for name, _ in cudart.calls
        if name in ("cudaMemcpyAsync", "cudaEventRecord")
    ]
    assert steps == ["event", "copy", "copy", "event", "event", "copy", "event"]
