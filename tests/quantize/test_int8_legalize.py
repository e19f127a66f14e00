"""quantize.legalize on small hand-built Q/DQ graphs shaped like NNCF's and ORT's output.

Each case starts from what a quantizer really emits (UINT8 activations from NNCF, asymmetric
zero points from ORT's defaults, per-channel Gemm weights on the wrong axis), checks that
`check_qdq` rejects it, legalises it, and then checks both legality and that ONNX Runtime still
computes nearly the same numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ort

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
helper = onnx.helper
numpy_helper = onnx.numpy_helper
TP = onnx.TensorProto

from edge.errors import EdgeBuildError  # noqa: E402
from edge.lint import check_qdq, errors  # noqa: E402
from quantize.legalize import legalize, residual_add_inputs  # noqa: E402

RNG = np.random.default_rng(0)


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _run(model, feed):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


def _rules(model):
    return {f.rule for f in errors(check_qdq(model))}


def _uint8_relu_model(opset=17):
    """x -> Relu -> Q/DQ (UINT8, NNCF style, typed in value_info) -> Gemm (INT8 weight)."""
    w = RNG.normal(size=(8, 4)).astype(np.float32)
    w_scale = (np.abs(w).max(axis=0) / 127).astype(np.float32)
    w_q = np.round(w / w_scale).astype(np.int8)
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "s", "zp"], ["rq"], name="q_r"),
        helper.make_node("DequantizeLinear", ["rq", "s", "zp"], ["rd"], name="dq_r"),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wzp"], ["wd"], name="dq_w", axis=1),
        helper.make_node("Gemm", ["rd", "wd"], ["y"], name="gemm"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, [2, 8])],
        [helper.make_tensor_value_info("y", TP.FLOAT, [2, 4])],
        [
            _init("s", np.float32(3.0 / 255)),
            _init("zp", np.uint8(0)),
            _init("wq", w_q),
            _init("ws", w_scale),
            _init("wzp", np.zeros(4, np.int8)),
        ],
        value_info=[helper.make_tensor_value_info("rq", TP.UINT8, [2, 8])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def test_uint8_activation_is_rewritten_to_symmetric_int8():
    model = _uint8_relu_model()
    assert "qdq-uint8" in _rules(model)
    x = RNG.uniform(-1, 3, size=(2, 8)).astype(np.float32)
    before = _run(model, {"x": x})

    changes = legalize(model)

    assert [c.kind for c in changes] == ["activation"]
    assert errors(check_qdq(model)) == []
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    q = next(n for n in model.graph.node if n.name == "q_r")
    zp = consts[q.input[2]]
    assert zp.dtype == np.int8 and zp == 0
    assert float(consts[q.input[1]]) == pytest.approx(3.0 / 127, rel=1e-6)  # same [0, 3] range
    after = _run(model, {"x": x})  # value_info retyped, so ORT loads it
    np.testing.assert_allclose(after, before, atol=0.1)
    assert model.opset_import[0].version == 17


def test_asymmetric_activation_keeps_its_real_range():
    model = _uint8_relu_model()
    consts = {t.name: t for t in model.graph.initializer}
    consts["zp"].CopyFrom(_init("zp", np.int8(-20)))
    model.graph.value_info[0].type.tensor_type.elem_type = TP.INT8
    assert "qdq-zero-point" in _rules(model)

    legalize(model)

    assert errors(check_qdq(model)) == []
    q = next(n for n in model.graph.node if n.name == "q_r")
    scale = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}[q.input[1]]
    # INT8 zp -20 covered [-108, 147] * s: the symmetric scale must reach 147 * s
    assert float(scale) == pytest.approx(147 * 3.0 / 255 / 127, rel=1e-6)


def test_gemm_weight_axis_and_zero_point_are_requantized():
    model = _uint8_relu_model()
    # ORT-style mistake: per-channel scales on axis 0 of a [in, out] Gemm weight, zp != 0
    w = RNG.normal(size=(8, 4)).astype(np.float32)
    scale = (np.abs(w).max(axis=1) / 100).astype(np.float32)
    zp = np.full(8, 3, np.int8)
    wq = np.clip(np.round(w / scale[:, None]) + 3, -128, 127).astype(np.int8)
    consts = {t.name: t for t in model.graph.initializer}
    consts["wq"].CopyFrom(_init("wq", wq))
    consts["ws"].CopyFrom(_init("ws", scale))
    consts["wzp"].CopyFrom(_init("wzp", zp))
    dq = next(n for n in model.graph.node if n.name == "dq_w")
    dq.attribute[0].i = 0
    assert {"qdq-axis", "qdq-zero-point"} <= _rules(model)
    real = (wq.astype(np.float64) - 3) * scale[:, None]

    changes = legalize(model)

    assert "weight" in [c.kind for c in changes]
    assert errors(check_qdq(model)) == []
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dq = next(n for n in model.graph.node if n.name == "dq_w")
    assert [a.i for a in dq.attribute if a.name == "axis"] == [1]
    values, new_scale = consts[dq.input[0]], consts[dq.input[1]]
    assert values.dtype == np.int8 and new_scale.shape == (4,)
    assert not np.any(consts[dq.input[2]])
    np.testing.assert_allclose(values * new_scale, real, atol=new_scale.max())


def _residual_model(*, conv_out_qdq=False, skip_qdq=True):
    """x -Q/DQ-> Conv (INT8 weight) -> [Q/DQ] -> Add <- [Q/DQ] <- x: a ResNet-style residual."""
    w = RNG.normal(size=(4, 4, 1, 1)).astype(np.float32)
    w_scale = (np.abs(w).reshape(4, -1).max(axis=1) / 127).astype(np.float32)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="q_x"),
        helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"], name="dq_x"),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wzp"], ["wd"], name="dq_w", axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv"),
    ]
    conv_out = "c"
    if conv_out_qdq:
        nodes += [
            helper.make_node("QuantizeLinear", ["c", "cs", "zp"], ["cq"], name="q_c"),
            helper.make_node("DequantizeLinear", ["cq", "cs", "zp"], ["cd"], name="dq_c"),
        ]
        conv_out = "cd"
    skip = "x"
    if skip_qdq:
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["sq"], name="q_skip"),
            helper.make_node("DequantizeLinear", ["sq", "s", "zp"], ["sd"], name="dq_skip"),
        ]
        skip = "sd"
    nodes.append(helper.make_node("Add", [conv_out, skip], ["y"], name="residual_add"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, [1, 4, 3, 3])],
        [helper.make_tensor_value_info("y", TP.FLOAT, [1, 4, 3, 3])],
        [
            _init("s", np.float32(2.0 / 127)),
            _init("cs", np.float32(4.0 / 127)),
            _init("zp", np.int8(0)),
            _init("wq", np.round(w / w_scale[:, None, None, None]).astype(np.int8)),
            _init("ws", w_scale),
            _init("wzp", np.zeros(4, np.int8)),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)], ir_version=8)


def _add_inputs(model):
    producers = {o: n for n in model.graph.node for o in n.output}
    add = next(n for n in model.graph.node if n.name == "residual_add")
    return [producers[i].op_type if i in producers else i for i in add.input]


def test_tensorrt_form_is_left_alone():
    """Conv output straight into the Add, Q/DQ on the residual input only: what TensorRT fuses
    (Developer Guide Q/DQ placement; NVIDIA/TensorRT #1992, #3270)."""
    model = _residual_model()
    assert residual_add_inputs(model) == []
    assert legalize(model) == []
    assert _add_inputs(model) == ["Conv", "DequantizeLinear"]


def test_qdq_on_the_fused_conv_output_is_removed():
    from edge.lint import check_placement

    model = _residual_model(conv_out_qdq=True)
    assert {f.rule for f in check_placement(model)} == {"qdq-residual"}
    x = RNG.uniform(-1, 1, size=(1, 4, 3, 3)).astype(np.float32)
    before = _run(model, {"x": x})

    changes = legalize(model)

    assert [c.kind for c in changes] == ["residual-fusion"]
    assert _add_inputs(model) == ["Conv", "DequantizeLinear"]
    assert check_placement(model) == [] and errors(check_qdq(model)) == []
    # one rounding fewer: still within one quantization step of the old output
    np.testing.assert_allclose(_run(model, {"x": x}), before, atol=4.0 / 127)


def test_unquantized_residual_input_gets_qdq_from_its_measured_range():
    model = _residual_model(skip_qdq=False)
    assert residual_add_inputs(model) == ["x"]
    x = RNG.uniform(-1, 1, size=(1, 4, 3, 3)).astype(np.float32)
    before = _run(model, {"x": x})

    changes = legalize(model, activation_ranges={"x": 1.0})

    assert [c.kind for c in changes] == ["residual"]
    assert _add_inputs(model) == ["Conv", "DequantizeLinear"]
    assert errors(check_qdq(model)) == []
    np.testing.assert_allclose(_run(model, {"x": x}), before, atol=0.05)
    assert model.opset_import[0].version == 16


def test_excluded_add_and_missing_range_are_left_alone():
    model = _residual_model(skip_qdq=False)
    assert legalize(model, activation_ranges={"x": 1.0}, exclude=["residual_add"]) == []
    assert legalize(_residual_model(skip_qdq=False)) == []  # no measured range: nothing invented


def test_lone_weight_qdq_goes_back_to_float():
    """A Conv with an INT8 weight but a float input is no INT8 kernel (MMNet's attention convs)."""
    w = RNG.normal(size=(2, 3, 1, 1)).astype(np.float32)
    scale = (np.abs(w).reshape(2, -1).max(axis=1) / 127).astype(np.float32)
    wq = np.round(w / scale[:, None, None, None]).astype(np.int8)
    nodes = [
        helper.make_node("DequantizeLinear", ["wq", "ws", "wzp"], ["wd"], name="dq_w", axis=0),
        helper.make_node("Conv", ["x", "wd"], ["y"], name="conv"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TP.FLOAT, [1, 2, 4, 4])],
        [_init("wq", wq), _init("ws", scale), _init("wzp", np.zeros(2, np.int8))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    x = RNG.normal(size=(1, 3, 4, 4)).astype(np.float32)
    before = _run(model, {"x": x})

    changes = legalize(model)

    assert [c.kind for c in changes] == ["partial"]
    assert [n.op_type for n in model.graph.node] == ["Conv"]
    np.testing.assert_allclose(_run(model, {"x": x}), before, rtol=1e-6, atol=1e-6)


def test_unfixable_qdq_raises_naming_the_model():
    model = _uint8_relu_model()
    scale = next(t for t in model.graph.initializer if t.name == "s")
    scale.CopyFrom(_init("s", np.float32(-1.0)))
    with pytest.raises(EdgeBuildError, match="tiny model: .*Q/DQ problem"):
        legalize(model, where="tiny model")


def test_int32_bias_dequantize_is_folded_to_fp32():
    """ORT's default bias Q/DQ reads INT32, which TensorRT's DequantizeLinear cannot."""
    model = _uint8_relu_model()
    model.graph.initializer.extend(
        [_init("bq", np.arange(4, dtype=np.int32)), _init("bs", np.full(4, 0.5, np.float32)),
         _init("bzp", np.zeros(4, np.int32))]
    )  # fmt: skip
    model.graph.node.insert(
        0, helper.make_node("DequantizeLinear", ["bq", "bs", "bzp"], ["bd"], name="dq_b", axis=0)
    )
    gemm = next(n for n in model.graph.node if n.name == "gemm")
    gemm.input.append("bd")
    x = RNG.uniform(0, 3, size=(2, 8)).astype(np.float32)
    reference = onnx.ModelProto()
    reference.CopyFrom(model)
    node = next(n for n in reference.graph.node if n.name == "dq_b")
    reference.graph.node.remove(node)
    reference.graph.initializer.append(_init("bd", np.arange(4, dtype=np.float32) * 0.5))
    before = _run(reference, {"x": x})

    changes = legalize(model)

    assert "bias" in [c.kind for c in changes]
    folded = next(n for n in model.graph.node if n.name == "dq_b")
    assert folded.op_type == "Constant"
    np.testing.assert_allclose(numpy_helper.to_array(folded.attribute[0].t), [0, 0.5, 1, 1.5])
    np.testing.assert_allclose(_run(model, {"x": x}), before, atol=0.1)


def test_qdq_between_conv_and_its_activation_is_removed():
    """ORT's quantizer quantizes a Conv's output before its ReLU; TensorRT fuses Conv + ReLU
    and quantizes after the ReLU, so that pair only blocks the fusion."""
    from edge.lint import check_placement

    w = RNG.normal(size=(4, 4, 1, 1)).astype(np.float32)
    w_scale = (np.abs(w).reshape(4, -1).max(axis=1) / 127).astype(np.float32)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="q_x"),
        helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"], name="dq_x"),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wzp"], ["wd"], name="dq_w", axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv"),
        helper.make_node("QuantizeLinear", ["c", "s", "zp"], ["cq"], name="q_c"),
        helper.make_node("DequantizeLinear", ["cq", "s", "zp"], ["cd"], name="dq_c"),
        helper.make_node("Relu", ["cd"], ["r"], name="relu"),
        helper.make_node("QuantizeLinear", ["r", "s", "zp"], ["rq"], name="q_r"),
        helper.make_node("DequantizeLinear", ["rq", "s", "zp"], ["y"], name="dq_r"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TP.FLOAT, [1, 4, 3, 3])],
        [helper.make_tensor_value_info("y", TP.FLOAT, [1, 4, 3, 3])],
        [
            _init("s", np.float32(2.0 / 127)),
            _init("zp", np.int8(0)),
            _init("wq", np.round(w / w_scale[:, None, None, None]).astype(np.int8)),
            _init("ws", w_scale),
            _init("wzp", np.zeros(4, np.int8)),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    assert {f.rule for f in check_placement(model)} == {"qdq-before-activation"}
    x = RNG.uniform(-1, 1, size=(1, 4, 3, 3)).astype(np.float32)
    before = _run(model, {"x": x})

    changes = legalize(model)

    assert [c.kind for c in changes] == ["activation-fusion"]
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    relu = next(n for n in model.graph.node if n.name == "relu")
    assert producers[relu.input[0]] == "Conv"
    assert check_placement(model) == [] and errors(check_qdq(model)) == []
    np.testing.assert_allclose(_run(model, {"x": x}), before, atol=2.0 / 127 + 1e-6)
