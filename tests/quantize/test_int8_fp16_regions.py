"""FP16 regions in an INT8 Q/DQ model (TensorRT 11): legal per release, INT8 islands intact."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ort

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
helper = onnx.helper
TP = onnx.TensorProto

from edge.lint import check_qdq, errors, lint_onnx  # noqa: E402
from quantize.int8 import quantize_model  # noqa: E402
from quantize.macs import mac_shares, node_macs  # noqa: E402
from quantize.mixed import fp16_regions, int8_island_nodes  # noqa: E402


def _convnet(opset: int) -> onnx.ModelProto:
    rng = np.random.default_rng(3)

    def init(name, shape):
        return onnx.numpy_helper.from_array(
            rng.normal(scale=0.3, size=shape).astype(np.float32), name
        )

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="/block1/Conv", pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["r1"], name="/block1/Relu"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="/block2/Conv", pads=[1] * 4),
        helper.make_node("Relu", ["c2"], ["r2"], name="/block2/Relu"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="/pool/GlobalAveragePool"),
        helper.make_node("Flatten", ["p"], ["f"], name="/flatten/Flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "convnet",
        [helper.make_tensor_value_info("x", TP.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("logits", TP.FLOAT, [1, 5])],
        [init("w1", (8, 3, 3, 3)), init("b1", (8,)), init("w2", (8, 8, 3, 3)),
         init("b2", (8,)), init("w3", (5, 8)), init("b3", (5,))],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def _feeds(n, seed):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=(1, 3, 16, 16)).astype(np.float32)} for _ in range(n)]


@pytest.fixture(scope="module", params=[16, 17], ids=["opset16", "opset17"])
def regions(request, tmp_path_factory):
    opset = request.param
    fp32 = _convnet(opset)
    quantized, _ = quantize_model(fp32, _feeds(16, 0), quantizer="ort", exclude=["/block2/"])
    root = tmp_path_factory.mktemp(f"regions{opset}")
    src, out = root / "int8.onnx", root / "int8.fp16.onnx"
    onnx.save(quantized, str(src))
    result = fp16_regions(src, out, opset=opset)
    return opset, fp32, quantized, onnx.load(str(out)), out, result


def test_excluded_compute_runs_fp16_and_int8_compute_keeps_its_qdq(regions):
    _, _, quantized, mixed, _, _ = regions
    before = {n.node: n.precision for n in node_macs(quantized)}
    after = {n.node: n.precision for n in node_macs(mixed)}
    assert before == {"/block1/Conv": "int8", "/block2/Conv": "fp32", "/fc/Gemm": "int8"}
    assert after == {"/block1/Conv": "int8", "/block2/Conv": "fp16", "/fc/Gemm": "int8"}
    shares = mac_shares(mixed)
    assert shares.share("fp32") == 0.0 and shares.share("fp16") > 0.5
    assert "/block1/Conv" in int8_island_nodes(quantized)


def test_qdq_scales_stay_exact_fp32_constants(regions):
    _, _, quantized, mixed, _, _ = regions
    inits = {t.name: t for t in mixed.graph.initializer}
    original = {t.name: onnx.numpy_helper.to_array(t) for t in quantized.graph.initializer}
    for node in mixed.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            scale = inits[node.input[1]]
            assert scale.data_type == TP.FLOAT
            name = node.input[1].replace("__qdq_fp32", "")
            np.testing.assert_array_equal(onnx.numpy_helper.to_array(scale), original[name])
    assert errors(check_qdq(mixed)) == []


def test_legal_for_every_release_of_its_opset(regions):
    opset, _, _, _, path, _ = regions
    targets = ("8.5",) if opset == 16 else ("8.6", "10", "11")
    for target in targets:
        assert errors(lint_onnx(path, target)) == [], target


def test_runs_and_keeps_the_int8_decisions(regions):
    _, fp32, quantized, _, path, _ = regions
    feeds = _feeds(24, 1)

    def run(model_or_path):
        data = (
            model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
        )
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        return np.concatenate([session.run(None, f)[0] for f in feeds])

    int8, mixed = run(quantized), run(str(path))
    assert mixed.dtype == np.float32
    assert np.abs(mixed - int8).max() < 0.05 * np.abs(int8).max()
    assert (mixed.argmax(1) == int8.argmax(1)).mean() >= 0.9
