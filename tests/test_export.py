"""Export at the TensorRT target's opset, validation rules, and simplification with parity."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import ExportError

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edge.export import onnx_from_model, op_histogram, validate_onnx  # noqa: E402
from edge.models.mmnet import load_mmnet  # noqa: E402
from edge.parity import compare_outputs  # noqa: E402
from edge.runtime.ort import OrtRunner  # noqa: E402
from edge.runtime.torch_runner import TorchRunner  # noqa: E402
from quantize import simplify as simplify_mod  # noqa: E402
from quantize.pipeline import reference_feeds  # noqa: E402
from tests.official_mmnet import official_state_dict  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.ort]


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "mmnet5.pth"
    torch.save(official_state_dict("casme2-5", seed=3), path)
    return load_mmnet(path)


@pytest.fixture(scope="module")
def exported(official, tmp_path_factory):
    out = {}
    for opset in (16, 17):
        path = tmp_path_factory.mktemp("onnx") / f"m{opset}.onnx"
        out[opset] = (onnx_from_model(official.model, official.spec, path, opset=opset), path)
    return out


@pytest.mark.parametrize("opset", [16, 17])
def test_onnxruntime_reproduces_pytorch_on_real_faces(official, exported, opset):
    result, path = exported[opset]
    assert result.opset == opset
    names, feeds, frames = reference_feeds(official.spec)
    assert frames.shape == (4, 2, 224, 224, 3)
    with TorchRunner(official.model, official.spec) as ref, OrtRunner(path) as ort:
        report = compare_outputs(
            [ref.infer(f) for f in feeds],
            [ort.infer(f) for f in feeds],
            tolerance=1e-4,
            reference_name="torch",
            candidate_name="ort",
        )
    assert report.passed, report.summary()
    assert report.max_abs_error < 1e-4 and report.top1_agreement == 1.0
    # real faces carry real motion: the inputs are not degenerate
    assert np.abs(feeds[0]["apex"] - feeds[0]["onset"]).mean() > 0.01


def test_opset_16_decomposes_layernorm_for_tensorrt_8_5(exported):
    ops16 = op_histogram(onnx.load(str(exported[16][1])))
    ops17 = op_histogram(onnx.load(str(exported[17][1])))
    assert "LayerNormalization" not in ops16
    assert ops17["LayerNormalization"] == 5  # 2 blocks x 2 + final norm


def test_position_branch_resize_has_no_antialias(exported):
    model = onnx.load(str(exported[17][1]))
    resizes = [n for n in model.graph.node if n.op_type == "Resize"]
    assert len(resizes) == 1
    attrs = {a.name: a for a in resizes[0].attribute}
    assert attrs["mode"].s == b"linear"
    assert "antialias" not in attrs or attrs["antialias"].i == 0


def test_named_io_and_metadata(exported):
    model = onnx.load(str(exported[17][1]))
    assert [i.name for i in model.graph.input] == ["onset", "apex"]
    assert [o.name for o in model.graph.output] == ["logits"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["mer_edge.class_names"] == "happiness,repression,disgust,surprise,others"


def test_dynamic_batch(official, tmp_path):
    spec = official.spec.with_batch("batch")
    path = tmp_path / "dyn.onnx"
    onnx_from_model(official.model, spec, path, opset=17, dynamic_batch=True)
    x = np.random.default_rng(0).standard_normal((3, 3, 224, 224)).astype(np.float32)
    with OrtRunner(path) as ort:
        assert ort.inputs["onset"].shape[0] == "batch"
        assert ort.infer({"onset": x, "apex": x[::-1].copy()})["logits"].shape == (3, 5)


def _tiny(op_nodes, opset=18, domain=""):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        op_nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])],
        [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 0.5, 0.5])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(domain, opset)])


def test_validation_rejects_antialias_resize():
    from onnx import helper

    node = helper.make_node(
        "Resize", ["x", "", "scales"], ["y"], name="down", mode="linear", antialias=1
    )
    with pytest.raises(ExportError, match="down: Resize with antialias=1"):
        validate_onnx(_tiny([node]), opset=18, where="tiny.onnx")


def test_validation_rejects_wrong_opset_and_invalid_models():
    from onnx import helper

    good = helper.make_node("Relu", ["x"], ["y"], name="r")
    with pytest.raises(ExportError, match="opset is 18, expected 17"):
        validate_onnx(_tiny([good]), opset=17, where="tiny.onnx")
    bad = helper.make_node("NoSuchOp", ["x"], ["y"], name="n")
    with pytest.raises(ExportError, match="ONNX validation failed"):
        validate_onnx(_tiny([bad]), opset=18, where="tiny.onnx")


@pytest.mark.parametrize("method", ["onnxsim", "onnxslim", "none"])
def test_simplifiers_keep_parity_and_opset(official, exported, tmp_path, method):
    if method == "onnxsim":
        pytest.importorskip("onnxsim")
    _, path = exported[16]
    dst = tmp_path / "s.onnx"
    result = simplify_mod.simplify_onnx(path, dst, method=method, opset=16)
    assert result.tool == method
    if method != "none":
        assert result.nodes_after < result.nodes_before
    assert "LayerNormalization" not in op_histogram(onnx.load(str(dst)))
    _, feeds, _ = reference_feeds(official.spec)
    with OrtRunner(path) as a, OrtRunner(dst) as b:
        report = compare_outputs(
            [a.infer(f) for f in feeds],
            [b.infer(f) for f in feeds],
            tolerance=1e-4,
            reference_name="raw",
            candidate_name=method,
        )
    assert report.passed, report.summary()


def test_auto_falls_back_to_onnxslim_and_says_why(exported, tmp_path, monkeypatch):
    def broken(model):
        raise RuntimeError("simulated onnxsim crash")

    monkeypatch.setitem(simplify_mod._RUNNERS, "onnxsim", broken)
    result = simplify_mod.simplify_onnx(
        exported[17][1], tmp_path / "s.onnx", method="auto", opset=17
    )
    assert result.tool == "onnxslim"
    assert "simulated onnxsim crash" in result.fallback_reason


def test_explicit_simplifier_failure_stops(exported, tmp_path, monkeypatch):
    def broken(model):
        raise RuntimeError("simulated onnxslim crash")

    monkeypatch.setitem(simplify_mod._RUNNERS, "onnxslim", broken)
    with pytest.raises(ExportError, match="onnxslim failed: simulated onnxslim crash"):
        simplify_mod.simplify_onnx(
            exported[17][1], tmp_path / "s.onnx", method="onnxslim", opset=17
        )
