"""Integer kernels for INT8 ops with float outputs: TensorRT's arithmetic, checked bit for bit.

Scales are powers of two and the sums stay below 2**24, so the int32 accumulation scaled to
float is exactly representable: the lowered graph, the unlowered graph and a numpy integer
reference must agree exactly, not approximately.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.ort]

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge.runtime.ort import OrtRunner  # noqa: E402
from edge.runtime.ort_integer import (  # noqa: E402
    dequantize_float_weights,
    integer_kernels_for_float_outputs,
)
from edge.runtime.ort_lowering import LOWERING_NOTE, lower_for_cpu  # noqa: E402

X_SCALE = 2.0**-4


def _session(model, *, optimize=True):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _run(model, feed, *, optimize=True):
    return _session(model, optimize=optimize).run(None, feed)


def _activation(name, scale=X_SCALE):
    """`name -> Q(int8, zp 0) -> DQ`, TensorRT style; returns (nodes, initializers, DQ output)."""
    inits = [
        numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s"),
        numpy_helper.from_array(np.array(0, np.int8), f"{name}_z"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", [name, f"{name}_s", f"{name}_z"], [f"{name}_q"]),
        helper.make_node(
            "DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_dq"]
        ),  # fmt: skip
    ]
    return nodes, inits, f"{name}_dq"


def _weight(name, w8, axis):
    """Per-channel int8 weight with power-of-two scales along `axis`; returns (node, inits, scale)."""
    channels = w8.shape[axis]
    scale = np.float32(2.0) ** -(5 + np.arange(channels) % 3).astype(np.float32)
    inits = [
        numpy_helper.from_array(w8, f"{name}_w8"),
        numpy_helper.from_array(scale, f"{name}_ws"),
        numpy_helper.from_array(np.zeros(channels, np.int8), f"{name}_wz"),
    ]
    node = helper.make_node("DequantizeLinear", [f"{name}_w8", f"{name}_ws", f"{name}_wz"],
                            [f"{name}_w"], axis=axis)  # fmt: skip
    return node, inits, scale


def _model(nodes, inits, inputs, outputs, opset=17):
    graph = helper.make_graph(nodes, "integer", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _ops(model):
    return [n.op_type for n in model.graph.node]


def _quantized_input(rng, shape):
    """A float input on the activation grid, so its Q/DQ is lossless and the reference exact."""
    q = rng.integers(-127, 128, size=shape)
    return (q * X_SCALE).astype(np.float32), q.astype(np.int64)


@pytest.mark.parametrize("op", ["gemm", "gemm_trans_b", "matmul"])
def test_gemm_with_a_float_output_runs_in_integers(op):
    rng = np.random.default_rng(0)
    k, n = 32, 6
    nodes, inits, x_dq = _activation("x")
    trans_b = op == "gemm_trans_b"
    w8 = rng.integers(-127, 128, size=(n, k) if trans_b else (k, n)).astype(np.int8)
    w_node, w_inits, w_scale = _weight("fc", w8, axis=0 if trans_b else 1)
    bias = (rng.integers(-64, 64, size=n) * 2.0**-8).astype(np.float32)
    inits += [*w_inits, numpy_helper.from_array(bias, "bias")]
    if op == "matmul":
        main = helper.make_node("MatMul", [x_dq, "fc_w"], ["y"], name="fc")
    else:
        main = helper.make_node(
            "Gemm", [x_dq, "fc_w", "bias"], ["y"], name="fc", transB=int(trans_b)
        )
    # the output feeds a float op (TensorRT's GELU), not a Q: ORT alone would run it in FP32
    nodes += [w_node, main, helper.make_node("Sigmoid", ["y"], ["z"])]
    model = _model(
        nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, k])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [4, n]) for o in ("y", "z")],
    )  # fmt: skip
    x, x_int = _quantized_input(rng, (4, k))
    w_int = (w8.T if trans_b else w8).astype(np.int64)
    expected = (x_int @ w_int) * (X_SCALE * w_scale.astype(np.float64))
    if op != "matmul":
        expected = expected + bias
    expected = expected.astype(np.float32)
    unlowered = _run(model, {"x": x}, optimize=False)[0]

    assert integer_kernels_for_float_outputs(model) == 1
    onnx.checker.check_model(model)
    assert "MatMulIntegerToFloat" in _ops(model) and _ops(model).count("DequantizeLinear") == 0
    for optimize in (False, True):
        np.testing.assert_array_equal(_run(model, {"x": x}, optimize=optimize)[0], expected)
    np.testing.assert_array_equal(unlowered, expected)


def _residual_block(rng, *, kernel=1, stride=1, requantize=False):
    """x -> Q/DQ -> Conv(kernel) -> Add(residual DQ) -> Relu -> Q/DQ -> y; conv output `c` too."""
    channels = 8
    nodes, inits, x_dq = _activation("x")
    # small weights keep the block's output inside the int8 range of its Q (no saturation)
    w8 = rng.integers(-31, 32, size=(channels, channels, kernel, kernel)).astype(np.int8)
    w_node, w_inits, w_scale = _weight("conv", w8, axis=0)
    bias = (rng.integers(-64, 64, size=channels) * 2.0**-8).astype(np.float32)
    inits += [*w_inits, numpy_helper.from_array(bias, "bias")]
    pad = kernel // 2
    nodes += [
        w_node,
        helper.make_node(
            "Conv",
            [x_dq, "conv_w", "bias"],
            ["c"],
            name="conv",
            pads=[pad] * 4,
            strides=[stride] * 2,
        ),  # fmt: skip
    ]
    if requantize:  # Conv -> Q: ORT fuses a QLinearConv itself
        q_nodes, q_inits, conv_dq = _activation("c", scale=2.0**-2)
        nodes += q_nodes
        inits += q_inits
        nodes.append(helper.make_node("Relu", [conv_dq], ["r"]))
    else:  # TensorRT's residual form: the Add fuses into the Conv, no Q/DQ between them
        nodes += [
            helper.make_node("Add", ["c", x_dq], ["a"]),
            helper.make_node("Relu", ["a"], ["r"]),
        ]
    q_nodes, q_inits, y_dq = _activation("r", scale=2.0**-1)
    nodes += [*q_nodes, helper.make_node("Identity", [y_dq], ["y"])]
    inits += q_inits
    side = 6
    out = [1, channels, side // stride, side // stride]
    model = _model(
        nodes, inits, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, side, side])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, out) for o in ("y", "c")],
    )  # fmt: skip
    x, x_int = _quantized_input(rng, (1, channels, side, side))
    return model, {"x": x}, x_int, w8, w_scale, bias


def test_pointwise_conv_into_a_residual_add_runs_in_integers():
    rng = np.random.default_rng(1)
    model, feed, x_int, w8, w_scale, bias = _residual_block(rng)
    accumulated = np.einsum("oc,nchw->nohw", w8[:, :, 0, 0].astype(np.int64), x_int)
    expected_conv = (
        accumulated * (X_SCALE * w_scale.astype(np.float64))[None, :, None, None]
        + bias[None, :, None, None]
    ).astype(np.float32)
    unlowered = _run(model, feed, optimize=False)

    assert lower_for_cpu(model) >= 1
    onnx.checker.check_model(model)
    assert "Conv" not in _ops(model) and "MatMulIntegerToFloat" in _ops(model)
    for optimize in (False, True):
        y, conv = _run(model, feed, optimize=optimize)
        np.testing.assert_array_equal(conv, expected_conv)
        np.testing.assert_array_equal(y, unlowered[0])
    np.testing.assert_array_equal(unlowered[1], expected_conv)


@pytest.mark.parametrize(
    "shape", [{"kernel": 3}, {"stride": 2}, {"requantize": True}], ids=["3x3", "stride2", "to_q"]
)
def test_other_convs_are_left_to_onnx_runtime(shape):
    """3x3 and strided convs stay float (ConvInteger is slower than ORT's float Conv); a Conv
    before a Q is ORT's own QLinearConv fusion."""
    model, *_ = _residual_block(np.random.default_rng(2), **shape)
    assert integer_kernels_for_float_outputs(model) == 0
    assert "Conv" in _ops(model)


def test_runner_runs_the_integer_kernels_with_the_same_numbers(tmp_path):
    rng = np.random.default_rng(4)
    model, feed, *_ = _residual_block(rng)
    path = tmp_path / "block.onnx"
    onnx.save(model, str(path))
    with OrtRunner(str(path)) as runner:
        lowered = runner.infer(feed)
        assert LOWERING_NOTE in runner.executor
    with OrtRunner(str(path), lower_qdq=False) as runner:
        plain = runner.infer(feed)
    for name in ("y", "c"):
        np.testing.assert_array_equal(lowered[name], plain[name])


def test_float_weights_of_convs_left_in_float_are_dequantized_once_to_the_same_bits():
    rng = np.random.default_rng(5)
    model, feed, *_ = _residual_block(rng, kernel=3)
    for tensor in model.graph.initializer:  # scales that are not powers of two
        if tensor.name == "conv_ws":
            tensor.CopyFrom(numpy_helper.from_array(rng.uniform(0.001, 0.01, 8).astype(np.float32),
                                                    "conv_ws"))  # fmt: skip
    before = _run(model, feed, optimize=False)

    assert dequantize_float_weights(model) == 1
    onnx.checker.check_model(model)
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    weights = {t.name: t for t in model.graph.initializer}
    assert weights[conv.input[1]].data_type == TensorProto.FLOAT
    assert "conv_w8" not in weights
    for got, expected in zip(_run(model, feed, optimize=False), before):
        np.testing.assert_array_equal(got, expected)


def test_weights_onnx_runtime_fuses_keep_their_dequantize():
    model, *_ = _residual_block(np.random.default_rng(6), kernel=3, requantize=True)
    assert dequantize_float_weights(model) == 0


def test_a_constant_that_is_also_a_graph_input_is_kept():
    """Older exports list initializers among the graph inputs too; dropping an orphaned one
    would turn it into an input every caller has to feed."""
    rng = np.random.default_rng(7)
    nodes, inits, x_dq = _activation("x")
    w8 = rng.integers(-127, 128, size=(6, 32)).astype(np.int8)
    w_node, w_inits, _ = _weight("fc", w8, axis=0)
    nodes += [w_node, helper.make_node("Gemm", [x_dq, "fc_w"], ["y"], name="fc", transB=1)]
    model = _model(
        nodes, [*inits, *w_inits],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 32]),
         helper.make_tensor_value_info("fc_w8", TensorProto.INT8, [6, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 6])],
    )  # fmt: skip
    x, _ = _quantized_input(rng, (4, 32))
    before = _run(model, {"x": x}, optimize=False)[0]

    assert integer_kernels_for_float_outputs(model) == 1  # reads a transposed copy of fc_w8
    assert "fc_w8" in {t.name for t in model.graph.initializer}
    np.testing.assert_array_equal(_run(model, {"x": x})[0], before)
