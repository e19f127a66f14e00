"""`placement="weighted"`: Q/DQ only on the inputs of weighted ops (TensorRT's guidance), on a
real NNCF quantization of a small gated CNN. (`--quantizer ort` narrows its op types to
Conv/Gemm/MatMul, but ORT still quantizes their output tensors where other ops read them.)"""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge.errors import EdgeBuildError  # noqa: E402
from quantize.int8 import quantize_model  # noqa: E402


def _gated_cnn() -> "onnx.ModelProto":
    """x -> two Convs whose outputs a Mul gates -> Conv -> y: a Mul NNCF quantizes."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w1")
    w3 = numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w3")
    w2 = numpy_helper.from_array(rng.normal(size=(4, 8, 1, 1)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["f"], name="/conv1/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w3"], ["h"], name="/conv3/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["f", "h"], ["m"], name="/gate/Mul"),
        helper.make_node("Conv", ["m", "w2"], ["y"], name="/conv2/Conv"),
    ]
    graph = helper.make_graph(
        nodes, "gated", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [w1, w3, w2],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _reads_int8(model, node_name: str) -> bool:
    dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    (node,) = [n for n in model.graph.node if n.name == node_name]
    return any(i in dq for i in node.input)


def test_weighted_placement_leaves_the_gate_in_float():
    pytest.importorskip("nncf")
    quantizer = "nncf"
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.normal(size=(1, 3, 8, 8)).astype(np.float32)} for _ in range(8)]
    model = _gated_cnn()
    everywhere, _ = quantize_model(model, feeds, quantizer=quantizer)
    weighted, details = quantize_model(model, feeds, quantizer=quantizer, placement="weighted")
    assert _reads_int8(everywhere, "/gate/Mul")  # the quantizer's own placement
    assert not _reads_int8(weighted, "/gate/Mul")
    for conv in ("/conv1/Conv", "/conv3/Conv", "/conv2/Conv"):
        assert _reads_int8(weighted, conv)
    assert details["settings"]["placement"] == "weighted"


def test_an_unknown_placement_is_refused():
    with pytest.raises(EdgeBuildError, match="unknown INT8 placement 'everywhere'"):
        quantize_model(_gated_cnn(), [{"x": np.zeros((1, 3, 8, 8), np.float32)}],
                       placement="everywhere")  # fmt: skip
