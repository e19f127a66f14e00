"""`--quantizer nncf` puts Q/DQ on the inputs of weighted ops, not on gating and reductions.

A squeeze-and-excitation block, the shape of AFNet-M's mask attention and MMNet's spatial
attention: Conv -> (ReduceMean -> Conv -> Sigmoid) gate -> Mul -> Conv. NNCF's CPU
configuration would quantize the Mul and the ReduceMean too; TensorRT fuses neither into a
weighted layer, so they stay float and every Conv still reads INT8. Real NNCF, real ORT.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ort

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("nncf")
helper = onnx.helper

from edge.lint import check_qdq, errors  # noqa: E402
from quantize.int8 import NNCF_FLOAT_TYPES, quantize_model  # noqa: E402
from quantize.macs import mac_shares  # noqa: E402


def _gated_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def init(name, *shape):
        return onnx.numpy_helper.from_array(
            rng.normal(scale=0.3, size=shape).astype(np.float32), name
        )

    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="/stem/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/stem/Relu"),
        helper.make_node("ReduceMean", ["r1"], ["m"], name="/gate/ReduceMean", axes=[2, 3]),
        helper.make_node("Conv", ["m", "wg"], ["g"], name="/gate/Conv"),
        helper.make_node("Sigmoid", ["g"], ["s"], name="/gate/Sigmoid"),
        helper.make_node("Mul", ["r1", "s"], ["gated"], name="/gate/Mul"),
        helper.make_node("Conv", ["gated", "w2"], ["logits"], name="/head/Conv"),
    ]
    graph = helper.make_graph(
        nodes,
        "gated",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 4, 8, 8])],
        [init("w1", 8, 3, 3, 3), init("wg", 8, 8, 1, 1), init("w2", 4, 8, 1, 1)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _readers_of_int8(model):
    dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return {
        n.name
        for n in model.graph.node
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and set(n.input) & dq
    }


def test_gating_and_reductions_stay_float_and_every_conv_reads_int8():
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.normal(size=(1, 3, 8, 8)).astype(np.float32)} for _ in range(16)]
    quantized, details = quantize_model(_gated_model(), feeds, quantizer="nncf")

    readers = _readers_of_int8(quantized)
    assert {"/stem/Conv", "/gate/Conv", "/head/Conv"} <= readers
    assert not readers & {"/gate/Mul", "/gate/ReduceMean"}
    assert mac_shares(quantized, fp16_flag=True).to_dict()["int8_share"] == pytest.approx(1.0)
    assert details["settings"]["float_op_types"] == list(NNCF_FLOAT_TYPES)
    assert errors(check_qdq(quantized)) == []


def test_without_the_float_types_nncf_quantizes_the_gate():
    """What the list changes: NNCF left to itself puts Q/DQ on the gating Mul."""
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.normal(size=(1, 3, 8, 8)).astype(np.float32)} for _ in range(16)]
    quantized, _ = quantize_model(_gated_model(), feeds, quantizer="nncf", float_types=())
    assert "/gate/Mul" in _readers_of_int8(quantized)
