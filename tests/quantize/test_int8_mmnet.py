"""INT8 MMNet as the project builds it: TensorRT legality per target, and fidelity on real faces.

Every INT8 model the build can produce (NNCF and ORT quantizers; TensorRT 10 at opset 17 and
TensorRT 8.5 at opset 16) is checked for zero points, INT8 dtypes, per-channel weight axes and
the opset, with the same lint the engine build runs. Calibration is kept small (16 synthetic
samples) because the machine is shared; `benchmarks/bench_quant.py` does the full-size run.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.ort, pytest.mark.torch, pytest.mark.slow]

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from calib.prepare import prepare_synthetic  # noqa: E402
from edge.bundle import Bundle  # noqa: E402
from edge.lint import check_qdq, errors, lint_onnx  # noqa: E402
from edge.metrics import top1_agreement  # noqa: E402
from edge.models.mmnet_spec import PRECISION_HINTS  # noqa: E402
from edge.runtime.ort import OrtRunner  # noqa: E402
from quantize.data import ValidationSet  # noqa: E402
from quantize.int8 import quantize_int8  # noqa: E402

TARGETS = {"10": 17, "8.5": 16}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    from quantize.cli.build import main as build_main

    built = {}
    for target in TARGETS:
        out = tmp_path_factory.mktemp("int8") / f"fp32-{target}"
        assert build_main(["--out", str(out), "--target-trt", target, "--quiet"]) == 0
        built[target] = Bundle.load(out)
    return built


@pytest.fixture(scope="module")
def calibration(bundles):
    return prepare_synthetic(bundles["10"].spec, 16, seed=0, cache_dir=None)


def _weight_axes(model):
    """(consumer op, transB, DQ axis, scale size) for every weight DequantizeLinear."""
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    users = {}
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            users.setdefault(name, []).append((node, index))
    found = []
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        rank = inits[node.input[0]].ndim
        for user, index in users.get(node.output[0], []):
            if index == 1 and user.op_type in ("Conv", "Gemm"):
                trans_b = next((a.i for a in user.attribute if a.name == "transB"), 0)
                found.append((user.op_type, trans_b, axis % rank, inits[node.input[1]].size))
    return found


@pytest.mark.parametrize("quantizer", ["nncf", "ort"])
@pytest.mark.parametrize("target", list(TARGETS))
def test_int8_mmnet_is_tensorrt_legal(bundles, calibration, tmp_path, target, quantizer):
    if quantizer == "nncf":
        pytest.importorskip("nncf")
    bundle = bundles[target]
    out = tmp_path / "model.int8.qdq.onnx"

    result = quantize_int8(
        bundle.root / "model.fp32.onnx",
        out,
        calibration,
        quantizer=quantizer,
        opset=TARGETS[target],
    )

    model = onnx.load(str(out))
    assert result.opset == TARGETS[target]
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [
        TARGETS[target]
    ]
    assert errors(check_qdq(model)) == []
    assert errors(lint_onnx(str(out), target)) == []
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) > 50
    for node in qdq:
        zero_point = inits[node.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any(), node.name
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            assert inits[node.input[0]].dtype == np.int8, node.name
    axes = _weight_axes(model)
    assert any(size > 1 for *_, size in axes)  # per-channel weights exist
    for op, trans_b, axis, size in axes:
        if size > 1:
            assert axis == (0 if op == "Conv" or trans_b else 1), (op, trans_b, axis)
    record = result.to_dict()
    assert record["tool"] in ("nncf", "onnxruntime.quantization") and record["tool_version"]
    assert record["node_counts"]["quantize_linear"] > 0
    if quantizer == "nncf":  # NNCF chose UINT8 for ReLU/Sigmoid/Softmax outputs: rewritten
        assert record["legalisation"]["counts"].get("activation", 0) > 0


def test_ort_int8_agrees_with_fp32_on_real_faces(bundles, calibration, tmp_path):
    pytest.importorskip("cv2")
    pytest.importorskip("skimage")
    from quantize.pipeline import reference_feeds

    bundle = bundles["10"]
    names, feeds, _ = reference_feeds(bundle.spec)
    out = tmp_path / "model.int8.qdq.onnx"
    result = quantize_int8(
        bundle.root / "model.fp32.onnx",
        out,
        calibration,
        quantizer="ort",
        exclude=PRECISION_HINTS,
    )
    assert any(n.startswith("/main_branch/") for n in result.excluded)

    def logits(path):
        with OrtRunner(str(path), threads=1) as runner:
            return np.concatenate([runner.infer(f)["logits"] for f in feeds])

    reference, int8 = logits(bundle.root / "model.fp32.onnx"), logits(out)
    assert len(names) >= 4
    assert top1_agreement(reference, int8) == 1.0
    np.testing.assert_allclose(int8, reference, atol=0.25)


def _fused_ops(model_bytes: bytes, tmp_path, name: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.optimized_model_filepath = str(tmp_path / name)
    ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / name))
    return [n.op_type for n in optimized.graph.node]


def _logits_of(model_bytes: bytes, feeds) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(["logits"], f)[0] for f in feeds])


def test_cpu_lowering_fuses_the_legal_model_without_changing_decisions(
    bundles, calibration, tmp_path
):
    """All-INT8 NNCF MMNet: the TensorRT-legal file is what ships; the runner's lowered copy
    gives ORT's CPU fused QLinearConv kernels and the same decisions."""
    pytest.importorskip("nncf")
    from edge.runtime.ort_lowering import LOWERING_NOTE, lower_for_cpu

    bundle = bundles["10"]
    out = tmp_path / "model.int8.qdq.onnx"
    quantize_int8(bundle.root / "model.fp32.onnx", out, calibration, quantizer="nncf")
    legal = onnx.load(str(out))
    lowered = onnx.load(str(out))
    assert lower_for_cpu(lowered) > 10
    plain_ops = _fused_ops(legal.SerializeToString(), tmp_path, "plain.onnx")
    lowered_ops = _fused_ops(lowered.SerializeToString(), tmp_path, "lowered.onnx")
    # every motion-path Conv reads INT8 once lowered; the legal form leaves most in FP32. The
    # four residual-branch convs have no output Q/DQ (TensorRT fuses the residual Add into
    # them, quantize.legalize), nor have the ViT MLP Gemms before GELU and the classifier:
    # those run as integer kernels with float outputs (edge.runtime.ort_integer)
    assert lowered_ops.count("QLinearConv") >= 9 > plain_ops.count("QLinearConv") + 5
    assert lowered_ops.count("MatMulIntegerToFloat") >= 7
    assert lowered_ops.count("Conv") + lowered_ops.count("FusedConv") <= 4  # 2-channel attention

    with np.load(bundle.root / "validation.npz") as data:
        frames = data["frames"][:12]
    feeds = ValidationSet([str(i) for i in range(len(frames))], frames, None, "t").feeds(
        bundle.spec
    )

    def logits(**kwargs):
        with OrtRunner(str(out), threads=1, **kwargs) as runner:
            values = np.concatenate([runner.infer(f)["logits"] for f in feeds])
            return values, runner.executor

    # the integer kernels are TensorRT's arithmetic: against the same graph without them the
    # logits move by float rounding only (propagated through the Qs after them)
    from edge.runtime.ort_lowering import retype_int8_activations, sink_dequantize_below_moves

    without = onnx.load(str(out))
    retype_int8_activations(without)
    sink_dequantize_below_moves(without)
    float_kernels = _logits_of(without.SerializeToString(), feeds)
    integer_kernels = _logits_of(lowered.SerializeToString(), feeds)
    assert np.abs(integer_kernels - float_kernels).max() < 0.01

    fused, executor = logits()
    exact, plain_executor = logits(lower_qdq=False)
    assert LOWERING_NOTE in executor and LOWERING_NOTE not in plain_executor
    assert top1_agreement(exact, fused) == 1.0
    # fused kernels requantize in integers, and outliers past the calibrated ReLU range
    # saturate later (uint8): small logit differences, well below INT8's own error vs FP32
    difference = np.abs(fused - exact)
    assert difference.mean() < 0.1 and difference.max() < 0.5, difference
    assert errors(check_qdq(onnx.load(str(out)))) == []  # the shipped file stays legal
