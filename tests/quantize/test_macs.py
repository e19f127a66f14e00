"""MAC-share accounting on hand-built graphs, counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ort

onnx = pytest.importorskip("onnx")
helper = onnx.helper
numpy_helper = onnx.numpy_helper
TP = onnx.TensorProto

from quantize.macs import mac_shares, node_macs  # noqa: E402


def _qdq(name: str, source: str, scale: float = 0.05):
    """Q/DQ pair on `source` with INT8 zero point; returns (nodes, initializers, output)."""
    inits = [
        numpy_helper.from_array(np.asarray(scale, np.float32), f"{name}_s"),
        numpy_helper.from_array(np.asarray(0, np.int8), f"{name}_z"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", [source, f"{name}_s", f"{name}_z"], [f"{name}_q"]),
        helper.make_node(
            "DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_dq"]
        ),
    ]
    return nodes, inits, f"{name}_dq"


def _weight_dq(name: str, array: np.ndarray):
    """INT8 weight initializer behind a DequantizeLinear."""
    q = np.clip(np.round(array / 0.01), -127, 127).astype(np.int8)
    inits = [
        numpy_helper.from_array(q, f"{name}_int8"),
        numpy_helper.from_array(np.asarray(0.01, np.float32), f"{name}_ws"),
        numpy_helper.from_array(np.asarray(0, np.int8), f"{name}_wz"),
    ]
    node = helper.make_node(
        "DequantizeLinear", [f"{name}_int8", f"{name}_ws", f"{name}_wz"], [f"{name}_w"]
    )
    return [node], inits, f"{name}_w"


def _model(nodes, inits, inputs, outputs, opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _graph(elem=TP.FLOAT):
    """x[1,3,8,8] -> conv_a (INT8: Q/DQ data + weight) -> Relu -> conv_b (weight Q/DQ only,
    data float) -> Flatten -> gemm (INT8 via Transpose of a DQ weight) -> MatMul of two DQs."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    n, i, x_dq = _qdq("x", "x")
    nodes += n
    inits += i
    n, i, wa = _weight_dq("a", rng.normal(size=(4, 3, 3, 3)).astype(np.float32))
    nodes += n
    inits += i
    nodes.append(helper.make_node("Conv", [x_dq, wa], ["ya"], name="conv_a", pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Relu", ["ya"], ["ra"], name="relu"))
    n, i, wb = _weight_dq("b", rng.normal(size=(2, 4, 1, 1)).astype(np.float32))
    nodes += n
    inits += i
    nodes.append(helper.make_node("Conv", ["ra", wb], ["yb"], name="conv_b"))
    nodes.append(helper.make_node("Flatten", ["yb"], ["f"], name="flatten"))
    n, i, f_dq = _qdq("f", "f")
    nodes += n
    inits += i
    n, i, wg = _weight_dq("g", rng.normal(size=(6, 128)).astype(np.float32))
    nodes += n
    inits += i
    nodes.append(helper.make_node("Transpose", [wg], ["wg_t"], name="wt", perm=[1, 0]))
    nodes.append(helper.make_node("Gemm", [f_dq, "wg_t"], ["h"], name="gemm"))
    n, i, h_dq = _qdq("h", "h")
    nodes += n
    inits += i
    nodes.append(helper.make_node("Reshape", [h_dq, "shape"], ["h2"], name="reshape"))
    inits.append(numpy_helper.from_array(np.asarray([1, 2, 3], np.int64), "shape"))
    n, i, m_dq = _weight_dq("m", rng.normal(size=(3, 5)).astype(np.float32))
    nodes += n
    inits += i
    nodes.append(helper.make_node("MatMul", ["h2", m_dq], ["out"], name="matmul"))
    return _model(
        nodes,
        inits,
        [helper.make_tensor_value_info("x", elem, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", elem, [1, 2, 5])],
    )


def test_macs_are_counted_by_hand():
    macs = {n.node: n.macs for n in node_macs(_graph())}
    assert macs == {
        "conv_a": 4 * 8 * 8 * (3 * 3 * 3),  # output elements x (Cin x kh x kw)
        "conv_b": 2 * 8 * 8 * 4,
        "gemm": 6 * 128,
        "matmul": 2 * 5 * 3,
    }


def test_int8_needs_both_data_and_weight_from_int8_dequantize():
    precision = {n.node: n.precision for n in node_macs(_graph())}
    # conv_b has INT8 weights but reads float activations: TensorRT cannot run it in INT8
    # the Gemm sees its weight DQ through a Transpose; the MatMul its data through a Reshape
    assert precision == {"conv_a": "int8", "conv_b": "fp32", "gemm": "int8", "matmul": "int8"}


def test_shares_add_up_and_the_fp16_flag_moves_the_rest_to_fp16():
    model = _graph()
    total = 4 * 8 * 8 * 27 + 2 * 8 * 8 * 4 + 6 * 128 + 30
    shares = mac_shares(model)
    assert shares.total_macs == total
    assert shares.share("int8") == pytest.approx((total - 512) / total)
    assert shares.share("fp32") == pytest.approx(512 / total)
    assert shares.share("fp16") == 0.0
    flagged = mac_shares(model, fp16_flag=True)
    assert flagged.share("fp16") == pytest.approx(512 / total)
    assert flagged.share("fp32") == 0.0
    entry = flagged.to_dict()
    assert entry["fp16_by"] == "builder flag"
    assert entry["not_int8"] == [{"node": "conv_b", "op": "Conv", "gmac": 0.0, "precision": "fp16"}]
    assert "INT8" in shares.summary()


def test_float16_typed_compute_counts_as_fp16_without_the_flag():
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.normal(size=(8, 4)).astype(np.float16), "w")
    model = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        [w],
        [helper.make_tensor_value_info("x", TP.FLOAT16, [1, 2, 8])],
        [helper.make_tensor_value_info("y", TP.FLOAT16, [1, 2, 4])],
    )
    (only,) = node_macs(model)
    assert (only.precision, only.macs) == ("fp16", 2 * 4 * 8)


def test_uint8_dequantize_is_not_int8():
    nodes, inits, _ = [], [], None
    inits = [
        numpy_helper.from_array(np.asarray(0.05, np.float32), "s"),
        numpy_helper.from_array(np.asarray(128, np.uint8), "z"),
        numpy_helper.from_array(np.ones((4, 8), np.float32), "w"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xdq"]),
        helper.make_node("Gemm", ["xdq", "w"], ["y"], name="gemm", transB=1),
    ]
    model = _model(
        nodes,
        inits,
        [helper.make_tensor_value_info("x", TP.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TP.FLOAT, [1, 4])],
    )
    (only,) = node_macs(model)
    assert only.precision == "fp32" and only.macs == 32
