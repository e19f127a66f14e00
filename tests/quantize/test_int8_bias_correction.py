"""NNCF's fast bias correction as a setting, and the build's measured choice (`auto`).

Real NNCF quantizations of a small biased CNN; the choice between the two settings is tested
with measured values standing in for the two all-INT8 models (which of them a real model
prefers is what benchmarks.bench_int8_limits and the AFNet-M build measure)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from quantize.int8 import quantize_model  # noqa: E402
from quantize.reduce import _choose_bias_correction  # noqa: E402
from quantize.sensitivity import Measurement, make_evaluator  # noqa: E402


def _biased_cnn() -> "onnx.ModelProto":
    """x -> Conv(+bias) -> Relu -> Conv(+bias) -> y."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=8).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(size=(4, 8, 1, 1)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="/conv1/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/act/Relu"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="/conv2/Conv"),
        helper.make_node("ReduceMean", ["c2"], ["y"], name="/pool/ReduceMean", axes=[2, 3],
                         keepdims=0),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "biased", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _feeds(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=(1, 3, 8, 8)).astype(np.float32)} for _ in range(n)]


def _biases(model) -> dict:
    """Conv name -> its bias values, through the float tensor the Conv reads."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return {n.name: inits[n.input[2]] for n in model.graph.node if n.op_type == "Conv"}


def test_bias_correction_off_leaves_the_trained_biases_and_on_shifts_them():
    pytest.importorskip("nncf")
    model, feeds = _biased_cnn(), _feeds(16, 1)
    trained = _biases(model)
    corrected, on = quantize_model(model, feeds)
    plain, off = quantize_model(model, feeds, bias_correction=False)
    assert on["settings"]["fast_bias_correction"] is True
    assert off["settings"]["fast_bias_correction"] is False
    for name, bias in _biases(plain).items():
        np.testing.assert_array_equal(bias, trained[name])
    assert any(not np.array_equal(b, trained[n]) for n, b in _biases(corrected).items())


def test_an_evaluator_variant_shares_references_and_floor_but_quantizes_its_own_way():
    pytest.importorskip("nncf")
    evaluate = make_evaluator(_biased_cnn(), _feeds(16, 1), _feeds(24, 2))
    variant = evaluate.variant(bias_correction=False)
    assert variant.settings["bias_correction"] is False
    assert "bias_correction" not in evaluate.settings
    _, details = variant.quantized(())
    assert details["settings"]["fast_bias_correction"] is False
    assert evaluate.quantized(())[1]["settings"]["fast_bias_correction"] is True
    assert variant.floor_draws is evaluate.floor_draws  # FP32's floor is measured once


class _Measured:
    """Two all-INT8 measurements standing in for real ones; `variant` as `Evaluator`'s."""

    def __init__(self, on: Measurement, off: Measurement, settings=None) -> None:
        self.on, self.off, self.settings = on, off, dict(settings or {})

    def variant(self, **settings):
        return _Measured(self.on, self.off, {**self.settings, **settings})

    def __call__(self, kept):
        return self.off if self.settings.get("bias_correction") is False else self.on


def _m(drop: float, shortfall: float = 0.0) -> Measurement:
    return Measurement(drop=drop, agreement=1 - drop, mean_abs_error=0.1, shortfall=shortfall)


def test_auto_keeps_bias_correction_when_it_meets_the_rule_and_measures_nothing_else():
    evaluate = _Measured(on=_m(0.0), off=_m(0.0))
    lines = []
    chosen, record = _choose_bias_correction(evaluate, (), 0.01, lines.append)
    assert chosen is evaluate and record["chosen"] == "on"
    assert set(record["measured"]) == {"on"} and lines == []


def test_auto_switches_it_off_when_that_is_nearer_the_rule():
    evaluate = _Measured(on=_m(0.0, shortfall=0.02), off=_m(0.0, shortfall=0.005))
    lines = []
    chosen, record = _choose_bias_correction(evaluate, (), 0.01, lines.append)
    assert chosen.settings["bias_correction"] is False and record["chosen"] == "off"
    assert record["measured"]["off"]["floor_shortfall"] == 0.005
    assert "bias correction off" in lines[0]


def test_auto_keeps_it_on_when_off_is_no_better():
    evaluate = _Measured(on=_m(0.02), off=_m(0.05))
    chosen, record = _choose_bias_correction(evaluate, (), 0.01, None)
    assert chosen is evaluate and record["chosen"] == "on"
    assert set(record["measured"]) == {"on", "off"}
