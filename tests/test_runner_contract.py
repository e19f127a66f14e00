"""One conformance test for every Runner backend: ONNX Runtime, PyTorch and TensorRT (the fake
`tensorrt` of one real release plus a host-memory CUDA runtime, since neither can exist here).

Each backend runs the same small model, logits = [sum over pixels of (apex - onset) per channel,
max of it for the first two channels], written once in ONNX, once in PyTorch and once as the
fake engine's work, and must keep the same contract: lifecycle, specs, feed checks, name-keyed
copies of the outputs, and what it reports about each run.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.runtime import STAGES, Runner
from edge.runtime.base import RunnerError
from edge.spec import ModelSpec, Preprocessing, TensorSpec
from tests.trt.test_runner import SHAPES, expected_logits

BACKENDS = ["ort", "torch", "trt"]


def _onnx_model(path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    def value(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(SHAPES[name]))

    nodes = [
        helper.make_node("Sub", ["apex", "onset"], ["diff"]),
        helper.make_node("Reshape", ["diff", "flat_shape"], ["flat"]),
        helper.make_node("ReduceSum", ["flat", "axis2"], ["sums"], keepdims=0),
        helper.make_node("ReduceMax", ["flat"], ["maxes"], axes=[2], keepdims=0),
        helper.make_node("Slice", ["maxes", "start", "stop", "axis1"], ["max2"]),
        helper.make_node("Concat", ["sums", "max2"], ["logits"], axis=1),
    ]
    consts = [
        helper.make_tensor("flat_shape", TensorProto.INT64, [3], [1, 3, -1]),
        helper.make_tensor("axis2", TensorProto.INT64, [1], [2]),
        helper.make_tensor("start", TensorProto.INT64, [1], [0]),
        helper.make_tensor("stop", TensorProto.INT64, [1], [2]),
        helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
    ]
    graph = helper.make_graph(
        nodes, "contract", [value("onset"), value("apex")], [value("logits")], consts
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _torch_runner():
    torch = pytest.importorskip("torch")
    from edge.runtime.torch_runner import TorchRunner

    class Model(torch.nn.Module):
        def forward(self, onset, apex):
            diff = (apex - onset).reshape(1, 3, -1)
            return torch.cat([diff.sum(dim=2), diff.amax(dim=2)[:, :2]], dim=1)

    spec = ModelSpec(
        arch="contract",
        variant="test",
        inputs=(TensorSpec("onset", SHAPES["onset"]), TensorSpec("apex", SHAPES["apex"])),
        outputs=(TensorSpec("logits", SHAPES["logits"]),),
        preprocessing=Preprocessing(size=(4, 4)),
        class_names=("a", "b", "c", "d", "e"),
    )
    return TorchRunner(Model, spec)


def _trt_runner(tmp_path):
    from edge.runtime.trt import TrtRunner
    from tests.trt.conftest import ORIN
    from tests.trt.fake_cuda import FakeCudart
    from tests.trt.test_runner import built_bundle, fake_engine

    root = built_bundle(tmp_path, "10.3")
    return TrtRunner(root, trt_module=fake_engine("10.3"), cudart=FakeCudart(), device=ORIN)


def make(backend, tmp_path) -> Runner:
    if backend == "ort":
        from edge.runtime.ort import OrtRunner

        return OrtRunner(_onnx_model(tmp_path / "contract.onnx"))
    if backend == "torch":
        return _torch_runner()
    return _trt_runner(tmp_path)


@pytest.fixture
def feeds():
    rng = np.random.default_rng(3)
    return {n: rng.standard_normal(SHAPES[n]).astype(np.float32) for n in ("onset", "apex")}


@pytest.mark.parametrize("backend", BACKENDS)
def test_runner_contract(backend, tmp_path, feeds):
    runner = make(backend, tmp_path)
    assert isinstance(runner, Runner)
    assert not runner.is_active
    with pytest.raises(RunnerError, match="not active"):
        runner.infer(feeds)
    with pytest.raises(RunnerError, match="not active"):
        runner.inputs  # noqa: B018
    assert runner.last_latency_ms is None and runner.last_stages_ms is None
    assert runner.last_gpu_ms is None

    with runner:
        assert runner.is_active
        with pytest.raises(RunnerError, match="already active"):
            runner.activate()
        assert {n: (s.shape, s.dtype) for n, s in runner.inputs.items()} == {
            "onset": (SHAPES["onset"], "float32"),
            "apex": (SHAPES["apex"], "float32"),
        }
        assert {n: s.dtype for n, s in runner.outputs.items()} == {"logits": "float32"}

        out = runner.infer(feeds)
        assert list(out) == ["logits"]
        np.testing.assert_allclose(
            out["logits"], expected_logits(feeds["onset"], feeds["apex"]), rtol=1e-5, atol=1e-5
        )
        # outputs are copies: changing one does not change the next run's
        out["logits"][...] = 0
        again = runner.infer(feeds)
        np.testing.assert_allclose(
            again["logits"], expected_logits(feeds["onset"], feeds["apex"]), rtol=1e-5, atol=1e-5
        )

        # what every runner reports about a run
        assert runner.last_latency_ms is not None and runner.last_latency_ms > 0
        stages = runner.last_stages_ms
        assert stages and set(stages) <= set(STAGES) and "compute" in stages
        assert all(v >= 0 for v in stages.values())
        if backend == "trt":
            assert set(stages) == set(STAGES)
            assert runner.last_gpu_ms == stages["compute"]
        else:
            assert set(stages) == {"compute"} and runner.last_gpu_ms is None
            assert stages["compute"] <= runner.last_latency_ms
        executor = runner.executor
        assert isinstance(executor, str)
        assert executor.startswith(
            {"ort": "onnxruntime", "torch": "torch", "trt": "TensorRT"}[backend]
        )

        # feed checks, before any backend work
        with pytest.raises(RunnerError, match="missing"):
            runner.infer({"onset": feeds["onset"]})
        with pytest.raises(RunnerError, match="unexpected"):
            runner.infer(dict(feeds, extra=feeds["onset"]))
        with pytest.raises(RunnerError, match="dtype"):
            runner.infer({k: v.astype(np.float64) for k, v in feeds.items()})
        with pytest.raises(RunnerError, match="shape"):
            runner.infer({k: v[..., :2] for k, v in feeds.items()})
    assert not runner.is_active
    runner.deactivate()  # a second deactivate is harmless
    with pytest.raises(RunnerError, match="not active"):
        runner.infer(feeds)
