"""The host-only Q/DQ lowering: same numbers, fused kernels, the shipped file untouched."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.ort]

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge.runtime.ort import OrtRunner  # noqa: E402
from edge.runtime.ort_lowering import LOWERING_NOTE, retype_int8_activations  # noqa: E402


def _qdq(name, scale, consumers=1):
    """Q(int8, zp 0) of `name` and `consumers` DQs; returns (nodes, initializers, dq outputs)."""
    inits = [
        numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s"),
        numpy_helper.from_array(np.array(0, np.int8), f"{name}_z"),
    ]
    nodes = [helper.make_node("QuantizeLinear", [name, f"{name}_s", f"{name}_z"], [f"{name}_q"])]
    outs = []
    for i in range(consumers):
        outs.append(f"{name}_dq{i}")
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s",
                                                           f"{name}_z"], [outs[-1]]))  # fmt: skip
    return nodes, inits, outs


def _weight(name, shape, rng):
    w = rng.integers(-127, 128, size=shape).astype(np.int8)
    scale = np.full((shape[0],), 0.002, np.float32)  # keeps ReLU outputs in their range
    inits = [numpy_helper.from_array(w, f"{name}_w8"), numpy_helper.from_array(scale, f"{name}_ws"),
             numpy_helper.from_array(np.zeros(shape[0], np.int8), f"{name}_wz")]  # fmt: skip
    node = helper.make_node("DequantizeLinear", [f"{name}_w8", f"{name}_ws", f"{name}_wz"],
                            [f"{name}_w"], axis=0)  # fmt: skip
    return node, inits


def _model(relu_fanout: int = 1):
    """x -> Q/DQ -> Conv -> Relu -> Q/DQ -> Conv -> Add(two DQs of one Q) -> y (TensorRT style)."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    n, i, x_dq = _qdq("x", 0.02)
    nodes += n
    inits += i
    for name in ("c1", "c2"):
        node, i = _weight(name, (8, 8 if name == "c2" else 3, 3, 3), rng)
        nodes.append(node)
        inits += i
    nodes.append(helper.make_node("Conv", [x_dq[0], "c1_w"], ["c1"], pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Relu", ["c1"], ["r1"]))
    n, i, r_dq = _qdq("r1", 0.05)
    nodes += n
    inits += i
    outputs = ["y"]
    if relu_fanout > 1:
        nodes.append(helper.make_node("Identity", ["r1"], ["r1_copy"]))
        outputs.append("r1_copy")
    nodes.append(helper.make_node("Conv", [r_dq[0], "c2_w"], ["c2"], pads=[1, 1, 1, 1]))
    n, i, c_dq = _qdq("c2", 0.1, consumers=2)
    nodes += n
    inits += i
    nodes.append(helper.make_node("Add", c_dq, ["y"]))
    graph = helper.make_graph(
        nodes,
        "lowering",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [1, 8, 16, 16]) for o in outputs],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _run(model, x, *, optimize=False):
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    return session.run(None, {"x": x})


def _zero_point_types(model):
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {n.input[0]: inits[n.input[2]].dtype.name for n in model.graph.node
            if n.op_type == "QuantizeLinear"}  # fmt: skip


def test_relu_and_shared_int8_qdq_are_retyped_with_identical_numbers():
    model = _model()
    lowered = onnx.ModelProto()
    lowered.CopyFrom(model)
    assert retype_int8_activations(lowered) == 3  # x and c2 (zero point 128), r1 (after ReLU)
    onnx.checker.check_model(lowered)
    types = _zero_point_types(lowered)
    assert types == {"x": "uint8", "r1": "uint8", "c2": "uint8"}
    rng = np.random.default_rng(1)
    for _ in range(5):
        # inside the calibrated ranges, the lowered model is the same function, bit for bit
        x = rng.uniform(-1.0, 1.0, (1, 3, 16, 16)).astype(np.float32)
        (expected,), (got,) = _run(model, x), _run(lowered, x)
        np.testing.assert_array_equal(got, expected)


def test_relu_feeding_anything_else_gets_the_exact_offset_form():
    model = _model(relu_fanout=2)
    assert retype_int8_activations(model) == 3
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    quant = next(
        n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "r1"
    )
    assert int(inits[quant.input[2]]) == 128  # the ReLU also feeds an Identity: not dropped


def test_runner_lowers_a_copy_and_names_it(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(_model(), str(path))
    before = path.read_bytes()
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32)
    with OrtRunner(str(path)) as runner:
        lowered = runner.infer({"x": x})["y"]
        assert LOWERING_NOTE in runner.executor
    with OrtRunner(str(path), lower_qdq=False) as runner:
        plain = runner.infer({"x": x})["y"]
        assert LOWERING_NOTE not in runner.executor
    assert path.read_bytes() == before
    np.testing.assert_allclose(lowered, plain, atol=1e-4)


def test_fp32_models_are_not_touched(tmp_path):
    path = tmp_path / "fp32.onnx"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "fp32", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])  # fmt: skip
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
        str(path),
    )
    with OrtRunner(str(path)) as runner:
        runner.infer({"x": np.ones((1, 3), np.float32)})
        assert LOWERING_NOTE not in runner.executor


def _unoptimized(model):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def test_dequantize_sinks_below_shape_ops_to_reach_the_gemm():
    """NNCF's `DQ -> Transpose -> Reshape -> Gemm` becomes `Transpose -> Reshape -> DQ -> Gemm`:
    exact (checked with every ORT optimisation off), and ORT then fuses a QGemm."""
    from edge.runtime.ort_lowering import sink_dequantize_below_moves

    rng = np.random.default_rng(5)
    nodes, inits, (x_dq,) = _qdq("x", 0.02)
    w8 = rng.integers(-127, 128, size=(8, 6)).astype(np.int8)
    inits += [
        numpy_helper.from_array(w8, "w8"),
        numpy_helper.from_array(np.full((6,), 0.01, np.float32), "ws"),
        numpy_helper.from_array(np.zeros(6, np.int8), "wz"),
        numpy_helper.from_array(np.array([4, 8], np.int64), "shape"),
    ]
    nodes += [
        helper.make_node("DequantizeLinear", ["w8", "ws", "wz"], ["w"], axis=1),
        helper.make_node("Transpose", [x_dq], ["t"], name="t", perm=[0, 2, 1]),
        helper.make_node("Reshape", ["t", "shape"], ["r"], name="r"),
        helper.make_node("Gemm", ["r", "w"], ["y"], name="gemm"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 6])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    feed = {"x": rng.normal(size=(1, 8, 4)).astype(np.float32)}
    before = _unoptimized(model).run(None, feed)[0]

    assert sink_dequantize_below_moves(model) == 2
    onnx.checker.check_model(model, full_check=True)
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    gemm = next(n for n in model.graph.node if n.name == "gemm")
    assert producers[gemm.input[0]] == "DequantizeLinear"
    np.testing.assert_array_equal(_unoptimized(model).run(None, feed)[0], before)


def test_runner_threads_do_not_spin_unless_asked(tmp_path):
    """Idle ORT threads busy-wait by default; on a shared 2-core host that took the cores other
    sessions needed (see OrtRunner's docstring), so the runner turns it off."""
    path = tmp_path / "m.onnx"
    onnx.save(_model(), str(path))
    for spin, expected in ((False, "0"), (True, "1")):
        with OrtRunner(str(path), threads=2, spin=spin) as runner:
            options = runner._session.get_session_options()
            assert options.get_session_config_entry("session.intra_op.allow_spinning") == expected
