"""`edge.lint`: one small real ONNX model per rule, checked for every target it concerns."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import EdgeBuildError

pytestmark = pytest.mark.ort

TARGETS = ["8.5", "8.6", "10", "11"]


def _model(nodes, inputs, outputs, inits=(), opset=17):
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # what TensorRT 8.5+ and onnxruntime read
    return model


def _vi(name, shape, elem=1):
    from onnx import helper

    return helper.make_tensor_value_info(name, elem, shape)


def _init(name, array):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(array), name)


def rules(findings):
    return sorted({(f.rule, f.node) for f in findings})


def conv_model(opset=17):
    from onnx import helper

    w = _init("w", np.ones((4, 3, 3, 3), np.float32))
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv0")
    return _model([node], [_vi("x", [1, 3, 8, 8])], [_vi("y", [1, 4, 6, 6])], [w], opset)


@pytest.mark.parametrize("target", TARGETS)
def test_clean_model_has_no_findings(target, tmp_path):
    from onnx import save

    path = tmp_path / "m.onnx"
    save(conv_model(), str(path))
    from edge.lint import lint_onnx

    assert lint_onnx(path, target) == []


def test_opset_range_per_target():
    from edge.lint import lint_onnx

    model = conv_model(opset=21)
    assert [f.releases for f in lint_onnx(model, "10")] == [
        ("10.3", "10.13", "10.14", "10.15", "10.16")
    ]
    assert rules(lint_onnx(model, "8.5")) == [("opset", None)]
    assert lint_onnx(model, "11") == []
    assert "outside the range TensorRT parses here (?-17)" in str(lint_onnx(model, "8.5")[0])


def test_layer_normalization_only_on_8_5():
    from onnx import helper

    from edge.lint import lint_onnx

    scale = _init("s", np.ones(4, np.float32))
    node = helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln0")
    model = _model([node], [_vi("x", [1, 4])], [_vi("y", [1, 4])], [scale])
    assert rules(lint_onnx(model, "8.5")) == [("unsupported-op", "ln0")]
    assert all(lint_onnx(model, t) == [] for t in ("8.6", "10", "11"))


def test_resize_antialias_is_rejected_everywhere():
    from onnx import helper

    from edge.lint import lint_onnx

    scales = _init("scales", np.array([1, 1, 0.5, 0.5], np.float32))
    node = helper.make_node(
        "Resize", ["x", "", "scales"], ["y"], name="down", mode="linear", antialias=1
    )
    model = _model([node], [_vi("x", [1, 3, 8, 8])], [_vi("y", [1, 3, 4, 4])], [scales], opset=18)
    for target in ("10", "11"):
        assert rules(lint_onnx(model, target)) == [("resize-antialias", "down")]


def test_unsupported_custom_and_unknown_ops():
    from onnx import helper

    from edge.lint import lint_onnx

    nodes = [
        helper.make_node("BitShift", ["a", "b"], ["c"], name="shift", direction="LEFT"),
        helper.make_node("MyPlugin", ["c"], ["d"], name="plugin", domain="com.example"),
        helper.make_node("NotAnOnnxOp", ["d"], ["e"], name="typo"),
    ]
    model = _model(nodes, [_vi("a", [4], 12), _vi("b", [4], 12)], [_vi("e", [4], 12)])
    found = lint_onnx(model, "10")
    assert rules(found) == [
        ("custom-op", "plugin"),
        ("unknown-op", "typo"),
        ("unsupported-op", "shift"),
    ]
    assert "node 'shift' (BitShift)" in str(found[0]) or "node 'shift' (BitShift)" in " ".join(
        map(str, found)
    )


def test_models_over_2gb(tmp_path):
    from edge.lint import lint_onnx

    big = tmp_path / "big.onnx"
    with open(big, "wb") as handle:
        handle.truncate((1 << 31) + 16)  # sparse: no disk space used, never loaded
    assert rules(lint_onnx(big, "10")) == [("size", None)]
    assert rules(lint_onnx(conv_model(), "11", size_limit=100)) == [("size", None)]
    with pytest.raises(EdgeBuildError, match="cannot read"):
        lint_onnx(tmp_path / "missing.onnx", "10")
    with pytest.raises(EdgeBuildError, match="unknown lint target"):
        lint_onnx(conv_model(), "9.0")


def qdq_conv(axis=0, zp_dtype=np.int8, zp_value=0, weight_dtype=np.int8, with_zp=True):
    """Activation Q/DQ (per tensor) + per-channel weight DQ feeding a Conv."""
    from onnx import helper

    zp = [] if not with_zp else ["x_zp"]
    inits = [
        _init("x_scale", np.float32(0.05)),
        _init("w_q", np.ones((4, 3, 3, 3), weight_dtype)),
        _init("w_scale", np.full(4, 0.01, np.float32)),
        _init("w_zp", np.full(4, zp_value, zp_dtype)),
    ]
    if with_zp:
        inits.append(_init("x_zp", np.array(0, np.int8)))
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale"] + zp, ["xq"], name="q_x"),
        helper.make_node("DequantizeLinear", ["xq", "x_scale"] + zp, ["xd"], name="dq_x"),
        helper.make_node(
            "DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], name="dq_w", axis=axis
        ),
        helper.make_node("Conv", ["xd", "w"], ["y"], name="conv0"),
    ]
    return _model(nodes, [_vi("x", [1, 3, 8, 8])], [_vi("y", [1, 4, 6, 6])], inits)


def test_legal_qdq_model_is_clean_and_runs():
    import onnxruntime as ort

    from edge.lint import check_qdq, lint_onnx

    model = qdq_conv()
    assert check_qdq(model) == [] and lint_onnx(model, "8.5") == []
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.ones((1, 3, 8, 8), np.float32)})
    assert y.shape == (1, 4, 6, 6)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"axis": 1}, [("qdq-axis", "dq_w")]),
        ({"zp_dtype": np.uint8, "weight_dtype": np.uint8}, [("qdq-uint8", "dq_w")]),
        ({"zp_value": 3}, [("qdq-zero-point", "dq_w")]),
        ({"with_zp": False}, [("qdq-uint8", "q_x")]),
    ],
)
def test_qdq_violations(kwargs, expected):
    from edge.lint import check_qdq, lint_onnx

    assert rules(check_qdq(qdq_conv(**kwargs))) == expected
    assert rules(lint_onnx(qdq_conv(**kwargs), "11")) == expected


@pytest.mark.parametrize(
    "op, trans_b, axis, ok",
    [
        ("Gemm", 1, 0, True),
        ("Gemm", 1, 1, False),
        ("Gemm", 0, 1, True),
        ("MatMul", 0, 1, True),
        ("MatMul", 0, 0, False),
    ],
)
def test_qdq_weight_axis_for_gemm_and_matmul(op, trans_b, axis, ok):
    from onnx import helper

    from edge.lint import check_qdq

    shape = (5, 8) if trans_b else (8, 5)
    inits = [
        _init("w_q", np.ones(shape, np.int8)),
        _init("s", np.full(5, 0.1, np.float32)),
        _init("zp", np.zeros(5, np.int8)),
    ]
    attrs = {"transB": trans_b} if op == "Gemm" else {}
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "s", "zp"], ["w"], name="dq_w", axis=axis),
        helper.make_node(op, ["x", "w"], ["y"], name="fc", **attrs),
    ]
    model = _model(nodes, [_vi("x", [2, 8])], [_vi("y", [2, 5])], inits)
    assert (check_qdq(model) == []) == ok
