"""quantize.bypass on a hand-built Q/DQ graph, and bench_int8_limits' usage errors (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from benchmarks.bench_int8_limits import _within_rule, gray_equivalent, main  # noqa: E402
from quantize.bypass import bypass_int8  # noqa: E402

SHAPE = [1, 2, 6, 6]
OPSET = 17


def _weights():
    rng = np.random.default_rng(0)
    return {f"w{i}": rng.normal(0, 0.5, (2, 2, 3, 3)).astype(np.float32) for i in (1, 2, 3)}


def _conv(name, data, weight, out):
    return helper.make_node("Conv", [data, weight], [out], name=name, pads=[1, 1, 1, 1])


def _model(nodes, inits):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [
            helper.make_tensor_value_info("out", TensorProto.FLOAT, SHAPE),
            helper.make_tensor_value_info("y1", TensorProto.FLOAT, SHAPE),
        ],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def _fp32():
    """x -> conv1 -> y1 -> conv2 -> y2; x -> conv3 -> z; out = y2 + z."""
    nodes = [
        _conv("conv1", "x", "w1", "y1"),
        _conv("conv2", "y1", "w2", "y2"),
        _conv("conv3", "x", "w3", "z"),
        helper.make_node("Add", ["y2", "z"], ["out"], name="add"),
    ]
    return _model(nodes, [numpy_helper.from_array(w, n) for n, w in _weights().items()])


def _int8():
    """The same graph with TensorRT-style Q/DQ on every Conv input; x's DQ feeds two Convs."""
    inits = [numpy_helper.from_array(np.array(0, np.int8), "zp")]
    nodes = []

    def qdq(tensor, scale):
        inits.append(numpy_helper.from_array(np.array(scale, np.float32), f"{tensor}_scale"))
        nodes.append(helper.make_node("QuantizeLinear", [tensor, f"{tensor}_scale", "zp"],
                                      [f"{tensor}_q"], name=f"{tensor}_Q"))  # fmt: skip
        nodes.append(helper.make_node("DequantizeLinear", [f"{tensor}_q", f"{tensor}_scale", "zp"],
                                      [f"{tensor}_dq"], name=f"{tensor}_DQ"))  # fmt: skip
        return f"{tensor}_dq"

    def weight(name, w):
        scale = float(np.abs(w).max() / 127)
        q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
        inits.append(numpy_helper.from_array(q, f"{name}_int8"))
        inits.append(numpy_helper.from_array(np.array(scale, np.float32), f"{name}_wscale"))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_wscale", "zp"],
                                      [f"{name}_dq"], name=f"{name}_DQ"))  # fmt: skip
        return f"{name}_dq"

    w = _weights()
    x = qdq("x", 0.05)
    nodes.append(_conv("conv1", x, weight("w1", w["w1"]), "y1"))
    nodes.append(_conv("conv2", qdq("y1", 0.05), weight("w2", w["w2"]), "y2"))
    nodes.append(_conv("conv3", x, weight("w3", w["w3"]), "z"))
    nodes.append(helper.make_node("Add", ["y2", "z"], ["out"], name="add"))
    return _model(nodes, inits)


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(["out", "y1"], session.run(["out", "y1"], {"x": x})))


def _producers(model):
    return {o: n for n in model.graph.node for o in n.output}


def test_bypass_makes_the_group_read_float_and_leaves_the_rest_int8():
    fp32, int8 = _fp32(), _int8()
    onnx.checker.check_model(int8)
    x = np.random.default_rng(1).normal(0, 1, SHAPE).astype(np.float32)
    reference, quantized = _run(fp32, x), _run(int8, x)
    assert not np.array_equal(quantized["y1"], reference["y1"])  # INT8 really differs

    bypassed = bypass_int8(int8, fp32, ["conv1"])
    onnx.checker.check_model(bypassed)
    nodes = {n.name: n for n in bypassed.graph.node}
    assert list(nodes["conv1"].input) == ["x", "w1"]  # reads float, the FP32 weight
    producers = _producers(bypassed)
    for name in ("conv2", "conv3"):  # untouched: both inputs still from DequantizeLinear
        assert [producers[i].op_type for i in nodes[name].input] == ["DequantizeLinear"] * 2
    # conv1's weight DQ and its int8 weight are gone; x's Q/DQ stays for conv3
    assert "w1_DQ" not in nodes and "x_DQ" in nodes
    assert "w1_int8" not in {t.name for t in bypassed.graph.initializer}

    out = _run(bypassed, x)
    np.testing.assert_array_equal(out["y1"], reference["y1"])
    # the rest still computes in INT8: conv2 sees y1's Q/DQ and conv3 the quantized x
    assert not np.allclose(out["out"], reference["out"], atol=1e-6)
    assert not np.array_equal(out["out"], quantized["out"])
    assert bypass_int8(int8, fp32, []).SerializeToString() == int8.SerializeToString()
    original = {n.name: n for n in int8.graph.node}["conv1"]
    assert list(original.input) == ["x_dq", "w1_dq"]  # the input model is not edited


def test_bypass_refuses_a_different_tensor_under_the_weight_name():
    fp32, int8 = _fp32(), _int8()
    clash = numpy_helper.from_array(np.zeros((2, 2, 3, 3), np.float32), "w1")
    int8.graph.initializer.append(clash)
    with pytest.raises(ValueError, match="different tensor under the FP32 weight's name 'w1'"):
        bypass_int8(int8, fp32, ["conv1"])


def test_gray_equivalent_interpolates_log_log():
    levels, mses = (0.5, 1.0, 2.0), (0.25e-4, 1e-4, 4e-4)  # exactly quadratic
    assert gray_equivalent(1e-4, levels, mses) == pytest.approx(1.0)
    assert gray_equivalent(16e-4, levels, mses) == pytest.approx(4.0)  # extrapolated
    assert gray_equivalent(1e-4, levels, (1e-4, 1e-4, 2e-4)) is None


def test_placement_keeps_out_only_improving_groups_within_the_int8_headroom():
    ranking = [
        {"group": "a", "mse": 0.01, "mac_share": 0.04},
        {"group": "b", "mse": 0.02, "mac_share": 0.05},  # would pass the 6% headroom
        {"group": "c", "mse": 0.03, "mac_share": 0.0},
        {"group": "d", "mse": 0.05, "mac_share": 0.0},  # no better than all-INT8: never kept
    ]
    chosen, share = _within_rule(ranking, base_mse=0.05, headroom=0.06)
    assert chosen == ["a", "c"] and share == pytest.approx(0.04)
    assert _within_rule(ranking, base_mse=0.05, headroom=-0.01) == ([], 0.0)


def _manifest(root, arch="mmnet"):
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"model": {"arch": arch}}))
    return root


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--calib-samples", "0"], "--calib-samples must be >= 1"),
        (["--hard-val-samples", "-3"], "--hard-val-samples must be >= 1"),
        (["--rank-clips", "-1"], "--rank-clips must be >= 0"),
        (["--keep-counts", "5,x"], "--keep-counts must be integers"),
        (["--keep-counts", "0"], "--keep-counts must be >= 1"),
        (["--arch", "vit"], "invalid choice"),
        (["--bundle", "{tmp}/nowhere"], "no manifest.json there"),
        (["--bundle", "{tmp}/b", "--arch", "afnet_m"], "--arch afnet_m but --bundle"),
        (["--bundle", "{tmp}/b"], "no model.fp32.onnx there"),
        (["--json", "{tmp}/missing/out.json"], "does not exist"),
    ],
)
def test_usage_errors_exit_2_before_any_work(tmp_path, monkeypatch, capsys, argv, message):
    _manifest(tmp_path / "b")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exit_info:
        main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written
