"""`quantize.fp16`: FP32 I/O kept, sensitive ops really FP32, ORT runs it and agrees with FP32.

Tiny hand-built graphs cover each converter pitfall; the real demo MMNet (exported at opset 17
and 16) covers agreement on real face pairs, lint for TensorRT 8.5/10/11 and opset preservation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

from edge.errors import ExportError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxconverter_common")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edge.lint import errors, lint_onnx  # noqa: E402
from edge.runtime.ort import OrtRunner  # noqa: E402
from quantize.fp16 import (  # noqa: E402
    DEFAULT_KEEP,
    FP16_MAX,
    decomposed_layernorm_nodes,
    fp16_from_onnx,
)

pytestmark = pytest.mark.ort

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16


def _types(path: Path) -> Dict[str, int]:
    """Element type of every tensor in the model, after ONNX's own type inference."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True)
    graph = model.graph
    found = {v.name: v.type.tensor_type.elem_type for v in graph.value_info}
    found.update({v.name: v.type.tensor_type.elem_type for v in graph.input})
    found.update({v.name: v.type.tensor_type.elem_type for v in graph.output})
    found.update({t.name: t.data_type for t in graph.initializer})
    return found


def _node(path: Path, name: str):
    return next(n for n in onnx.load(str(path)).graph.node if n.name == name)


def _save(graph, path: Path, opset: int = 17) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def _run(path: Path, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    with OrtRunner(path) as runner:
        return runner.infer(feeds)


def _attention_block(path: Path, *, opset: int = 17) -> Path:
    """x[1,8,16] -> MatMul -> LayerNorm -> Softmax -> Mul(shared weight) -> y, plus a
    Constant feeding only the LayerNorm path and a Cast(to=FLOAT) of an int branch."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(16, 16)).astype(np.float32), "w")
    scale = numpy_helper.from_array(rng.normal(size=(16,)).astype(np.float32), "scale")
    bias = numpy_helper.from_array(np.zeros(16, np.float32), "bias")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="matmul"),
        helper.make_node(
            "Constant",
            [],
            ["eps_like"],
            name="const",
            value=numpy_helper.from_array(np.float32(1e-5).reshape(()), "eps_like"),
        ),
        helper.make_node("Add", ["h", "eps_like"], ["h2"], name="add_const"),
        helper.make_node("LayerNormalization", ["h2", "scale", "bias"], ["ln"], name="ln", axis=-1),
        helper.make_node("Softmax", ["ln"], ["sm"], name="softmax", axis=-1),
        # `scale` is read by the kept LayerNorm and by this converted Mul: the shared case
        helper.make_node("Mul", ["sm", "scale"], ["y0"], name="mul_shared"),
        helper.make_node("Cast", ["k"], ["kf"], name="cast_int", to=FLOAT),
        helper.make_node("Add", ["y0", "kf"], ["y"], name="add_int"),
    ]
    graph = helper.make_graph(
        nodes,
        "attention_block",
        [
            helper.make_tensor_value_info("x", FLOAT, [1, 8, 16]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [1, 8, 16]),
        ],
        [helper.make_tensor_value_info("y", FLOAT, [1, 8, 16])],
        [w, scale, bias],
    )
    return _save(graph, path, opset)


def _feeds() -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "x": rng.normal(size=(1, 8, 16)).astype(np.float32),
        "k": rng.integers(0, 3, size=(1, 8, 16)).astype(np.int64),
    }


def test_io_stays_fp32_and_kept_ops_are_fp32_in_the_graph(tmp_path):
    src = _attention_block(tmp_path / "block.onnx")
    out = tmp_path / "block.fp16.onnx"
    result = fp16_from_onnx(src, out, opset=17)

    model = onnx.load(str(out))
    assert [(v.name, v.type.tensor_type.elem_type) for v in model.graph.input] == [
        ("x", FLOAT),
        ("k", TensorProto.INT64),
    ]
    assert [(v.name, v.type.tensor_type.elem_type) for v in model.graph.output] == [("y", FLOAT)]
    types = _types(out)
    for name in ("ln", "softmax"):
        node = _node(out, name)
        assert all(types[i] == FLOAT for i in node.input if i), (name, node.input)
        assert all(types[o] == FLOAT for o in node.output), (name, node.output)
    # the converted part really is FP16
    matmul = _node(out, "matmul")
    assert types[matmul.output[0]] == FLOAT16
    assert types["w"] == FLOAT16
    kept = {k.name: k.reason for k in result.kept_nodes}
    assert {"ln", "softmax", "cast_int"} <= set(kept)
    assert "overflows FP16" in kept["ln"]
    d = result.to_dict()
    assert d["converter"] == "onnxconverter-common" and d["converter_version"]
    assert d["keep_io_types"] is True
    assert d["keep_fp32_ops"] == list(DEFAULT_KEEP)


def test_shared_initializer_and_constants_keep_their_precision(tmp_path):
    src = _attention_block(tmp_path / "block.onnx")
    out = tmp_path / "block.fp16.onnx"
    fp16_from_onnx(src, out, opset=17)
    types = _types(out)
    ln = _node(out, "ln")
    mul = _node(out, "mul_shared")
    # the LayerNorm reads an FP32 copy of `scale`, the converted Mul an FP16 one
    assert types[ln.input[1]] == FLOAT and ln.input[1] != "scale"
    assert types[mul.input[1]] == FLOAT16
    # no FP32 -> FP16 -> FP32 round trip between kept nodes (LayerNorm feeds Softmax)
    sm = _node(out, "softmax")
    assert sm.input[0] == ln.output[0]


def test_onnx_runtime_agrees_with_fp32_on_the_tiny_block(tmp_path):
    src = _attention_block(tmp_path / "block.onnx")
    out = tmp_path / "block.fp16.onnx"
    fp16_from_onnx(src, out, opset=17)
    feeds = _feeds()
    ref = _run(src, feeds)["y"]
    got = _run(out, feeds)["y"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=5e-3, rtol=5e-3)


def test_keeping_nothing_converts_layernorm(tmp_path):
    src = _attention_block(tmp_path / "block.onnx")
    out = tmp_path / "block.fp16.onnx"
    result = fp16_from_onnx(src, out, keep_fp32_ops=(), opset=17)
    assert _types(out)[_node(out, "ln").output[0]] == FLOAT16
    assert "ln" not in {k.name for k in result.kept_nodes}


def test_keep_fp32_nodes_by_name_and_unknown_names_fail(tmp_path):
    src = _attention_block(tmp_path / "block.onnx")
    out = tmp_path / "block.fp16.onnx"
    result = fp16_from_onnx(src, out, keep_fp32_nodes=["matmul"], opset=17)
    assert _types(out)[_node(out, "matmul").output[0]] == FLOAT
    assert {k.name: k.reason for k in result.kept_nodes}["matmul"] == (
        "requested with keep_fp32_nodes"
    )
    with pytest.raises(ExportError, match="not in the model: nope"):
        fp16_from_onnx(src, out, keep_fp32_nodes=["nope"], opset=17)


def test_wrong_opset_and_unreadable_input_fail_clearly(tmp_path):
    src = _attention_block(tmp_path / "block.onnx")
    with pytest.raises(ExportError, match="opset is 17, expected 16"):
        fp16_from_onnx(src, tmp_path / "o.onnx", opset=16)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(ExportError, match="bad.onnx: cannot read"):
        fp16_from_onnx(bad, tmp_path / "o.onnx", opset=17)


def test_out_of_range_initializers_are_clamped_and_reported(tmp_path):
    big = numpy_helper.from_array(np.array([1e6, -1e6, 1.0, 1e-9], np.float32), "big")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "big"], ["y"], name="mul")],
        "clamp",
        [helper.make_tensor_value_info("x", FLOAT, [4])],
        [helper.make_tensor_value_info("y", FLOAT, [4])],
        [big],
    )
    src = _save(graph, tmp_path / "clamp.onnx")
    out = tmp_path / "clamp.fp16.onnx"
    result = fp16_from_onnx(src, out, opset=17)
    assert result.clamped == {"big": {"above_fp16_max": 2, "below_fp16_subnormal": 1}}
    y = _run(out, {"x": np.ones(4, np.float32)})["y"]
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y[:3], [FP16_MAX, -FP16_MAX, 1.0])
    assert y[3] > 0  # raised to the smallest subnormal, not flushed to zero


def test_resize_scales_stay_fp32(tmp_path):
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"], name="relu"),
            helper.make_node("Resize", ["r", "", "scales"], ["y"], name="resize", mode="linear"),
        ],
        "resize",
        [helper.make_tensor_value_info("x", FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("y", FLOAT, [1, 1, 8, 8])],
        [scales],
    )
    src = _save(graph, tmp_path / "resize.onnx")
    out = tmp_path / "resize.fp16.onnx"
    result = fp16_from_onnx(src, out, opset=17)
    assert _types(out)["scales"] == FLOAT
    assert "resize" in {k.name for k in result.kept_nodes}
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(_run(out, {"x": x})["y"], _run(src, {"x": x})["y"], atol=1e-2)


def _decomposed_layernorm(path: Path) -> Path:
    """The opset-16 LayerNorm as torch exports it for TensorRT 8.5, with values whose square
    overflows FP16 (|x - mean| ~ 400: 400**2 = 160,000 > 65,504)."""
    two = numpy_helper.from_array(np.float32(2.0).reshape(()), "two")
    eps = numpy_helper.from_array(np.float32(1e-5).reshape(()), "eps")
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], name="ln/ReduceMean", axes=[-1]),
        helper.make_node("Sub", ["x", "mean"], ["d"], name="ln/Sub"),
        helper.make_node("Pow", ["d", "two"], ["sq"], name="ln/Pow"),
        helper.make_node("ReduceMean", ["sq"], ["var"], name="ln/ReduceMean_1", axes=[-1]),
        helper.make_node("Add", ["var", "eps"], ["ve"], name="ln/Add"),
        helper.make_node("Sqrt", ["ve"], ["std"], name="ln/Sqrt"),
        helper.make_node("Div", ["d", "std"], ["n"], name="ln/Div"),
        # an unrelated channel reduction must not be caught by the pattern
        helper.make_node("ReduceMean", ["n"], ["y"], name="other/ReduceMean", axes=[1]),
    ]
    graph = helper.make_graph(
        nodes,
        "decomposed_ln",
        [helper.make_tensor_value_info("x", FLOAT, [1, 4, 32])],
        [helper.make_tensor_value_info("y", FLOAT, [1, 1, 32])],
        [two, eps],
    )
    return _save(graph, path, opset=16)


def test_decomposed_layernorm_is_found_and_kept_fp32(tmp_path):
    src = _decomposed_layernorm(tmp_path / "ln16.onnx")
    chains = decomposed_layernorm_nodes(onnx.load(str(src)))
    assert chains == [
        [
            "ln/ReduceMean",
            "ln/Sub",
            "ln/Pow",
            "ln/ReduceMean_1",
            "ln/Add",
            "ln/Sqrt",
            "ln/Div",
        ]
    ]
    out = tmp_path / "ln16.fp16.onnx"
    fp16_from_onnx(src, out, opset=16)
    types = _types(out)
    assert types[_node(out, "ln/Pow").output[0]] == FLOAT
    assert types[_node(out, "other/ReduceMean").output[0]] == FLOAT16
    # the Sub feeding both Pow and Div reaches them in FP32 with no FP16 round trip
    sub_out = _node(out, "ln/Sub").output[0]
    assert _node(out, "ln/Pow").input[0] == sub_out == _node(out, "ln/Div").input[0]

    x = np.random.default_rng(2).normal(scale=400.0, size=(1, 4, 32)).astype(np.float32)
    ref = _run(src, {"x": x})["y"]
    np.testing.assert_allclose(_run(out, {"x": x})["y"], ref, atol=2e-2)
    # ONNX Runtime's CPU provider upcasts FP16 ops without kernels and drops the Cast pairs,
    # so it cannot show FP16 overflow; ONNX's numpy reference evaluator computes in FP16.
    reference = pytest.importorskip("onnx.reference")
    kept = reference.ReferenceEvaluator(str(out)).run(None, {"x": x})[0]
    np.testing.assert_allclose(kept, ref, atol=2e-2)
    naive = tmp_path / "ln16.naive.onnx"
    fp16_from_onnx(src, naive, keep_fp32_ops=(), opset=16)
    with np.errstate(over="ignore", invalid="ignore"):
        collapsed = reference.ReferenceEvaluator(str(naive)).run(None, {"x": x})[0]
    # Pow overflows to inf, the variance is inf and the normalised output collapses to 0
    assert not np.allclose(collapsed, ref, atol=0.1)


# --- the real demo MMNet ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def mmnet_onnx(tmp_path_factory):
    """The trained demo MMNet exported and simplified at opset 17 (TensorRT 10/11) and 16 (8.5)."""
    pytest.importorskip("torch")
    from edge.export import onnx_from_model
    from edge.models import architecture
    from quantize.simplify import simplify_onnx

    loaded = architecture("mmnet").build_demo()
    root = tmp_path_factory.mktemp("fp16-mmnet")
    paths = {}
    for opset in (17, 16):
        raw = root / f"raw{opset}.onnx"
        onnx_from_model(loaded.model, loaded.spec, raw, opset=opset)
        paths[opset] = root / f"model{opset}.onnx"
        simplify_onnx(raw, paths[opset], method="auto", opset=opset)
    return loaded.spec, paths


@pytest.fixture(scope="module")
def face_feeds(mmnet_onnx) -> List[Dict[str, np.ndarray]]:
    pytest.importorskip("cv2")
    pytest.importorskip("skimage")
    from calib.faces import reference_pairs
    from edge.preprocess import prepare_inputs

    spec = mmnet_onnx[0]
    roles = spec.preprocessing.frames
    return [
        prepare_inputs(spec, dict(zip(roles, (onset, apex))))
        for _, onset, apex in reference_pairs(size=spec.preprocessing.size[0])
    ]


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("opset,targets", [(17, ("10", "11")), (16, ("8.5",))])
def test_mmnet_fp16_lints_clean_keeps_opset_and_agrees_on_real_faces(
    mmnet_onnx, face_feeds, tmp_path, opset, targets
):
    src = mmnet_onnx[1][opset]
    out = tmp_path / "model.fp16.onnx"
    result = fp16_from_onnx(src, out, opset=opset)

    model = onnx.load(str(out))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    assert all(v.type.tensor_type.elem_type == FLOAT for v in model.graph.input)
    assert all(v.type.tensor_type.elem_type == FLOAT for v in model.graph.output)
    for target in targets:
        findings = lint_onnx(out, target)
        assert errors(findings) == [], [str(f) for f in findings]

    kept_ops = {k.op_type for k in result.kept_nodes}
    if opset == 17:
        assert {"LayerNormalization", "Softmax", "Resize"} <= kept_ops
    else:  # TensorRT 8.5: LayerNorm is decomposed and its chains stay FP32
        assert "LayerNormalization" not in {n.op_type for n in model.graph.node}
        assert {"Pow", "Sqrt", "Softmax"} <= kept_ops
    types = _types(out)
    for kept in result.kept_nodes:
        node = _node(out, kept.name)
        assert all(types[o] == FLOAT for o in node.output), kept
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(types[c.input[1]] == FLOAT16 for c in convs)

    ref = np.concatenate([_run(src, f)["logits"] for f in face_feeds])
    with OrtRunner(out) as runner:
        got = np.concatenate([runner.infer(f)["logits"] for f in face_feeds])
    assert got.dtype == np.float32
    assert np.array_equal(ref.argmax(1), got.argmax(1))
    assert np.abs(got - ref).max() < 0.05
