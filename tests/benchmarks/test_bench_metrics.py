"""Accuracy-loss metrics and latency statistics against hand-computed cases (numpy only)."""

from __future__ import annotations

from typing import Dict, Mapping

import numpy as np
import pytest

from benchmarks.accuracy import (
    accuracy,
    classification_metrics,
    compare_to_reference,
    confusion_matrix,
    logit_errors,
    per_class_recall,
    top1_agreement,
    uar,
    uf1,
    with_pixel_noise,
)
from benchmarks.latency import (
    batch_support,
    measure_latency,
    percentiles,
    summarize,
    tile_batch,
)
from edge.errors import EdgeBuildError
from edge.runtime.base import Runner
from edge.spec import TensorSpec

# Imbalanced: 6 / 2 / 2 samples. Confusion rows (true) [5,1,0], [1,1,0], [0,1,1].
Y_TRUE = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]
Y_PRED = [0, 0, 0, 0, 0, 1, 1, 0, 2, 1]


def _onehot_logits(pred, num_classes):
    logits = np.full((len(pred), num_classes), -1.0)
    logits[np.arange(len(pred)), pred] = 2.0
    return logits


def test_confusion_matrix_rows_are_truth():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == [[5, 1, 0], [1, 1, 0], [0, 1, 1]]


def test_accuracy_uar_uf1_on_imbalanced_classes():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert accuracy(cm) == pytest.approx(0.7)
    # recall 5/6, 1/2, 1/2 -> UAR 11/18, although accuracy is 0.7
    assert per_class_recall(cm) == pytest.approx([5 / 6, 0.5, 0.5])
    assert uar(cm) == pytest.approx(11 / 18)
    # F1 = 2TP/(2TP+FP+FN): 10/12, 2/5, 2/3 -> UF1 57/90
    assert uf1(cm) == pytest.approx(57 / 90)


def test_absent_class_is_left_out_but_a_predicted_absent_class_counts_in_uf1():
    cm4 = confusion_matrix(Y_TRUE, Y_PRED, 4)  # class 3 neither labelled nor predicted
    assert np.isnan(per_class_recall(cm4)[3])
    assert uar(cm4) == pytest.approx(11 / 18) and uf1(cm4) == pytest.approx(57 / 90)
    pred = list(Y_PRED)
    pred[0] = 3  # a false positive for class 3: recall of 0 drops, UF1 gains a zero F1
    cm = confusion_matrix(Y_TRUE, pred, 4)
    assert uar(cm) == pytest.approx((4 / 6 + 0.5 + 0.5) / 3)
    f1_0 = 2 * 4 / (2 * 4 + 1 + 2)
    assert uf1(cm) == pytest.approx((f1_0 + 0.4 + 2 / 3 + 0.0) / 4)


def test_classification_metrics_per_class_and_support():
    names = ("a", "b", "c", "d")
    m = classification_metrics(_onehot_logits(Y_PRED, 4), Y_TRUE, names)
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["per_class_recall"] == pytest.approx({"a": 5 / 6, "b": 0.5, "c": 0.5, "d": None})
    assert m["support"] == {"a": 6, "b": 2, "c": 2, "d": 0}
    assert m["confusion"][0] == [5, 1, 0, 0]


def test_agreement_and_logit_errors():
    ref = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 0.0]])
    cand = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 1.5], [0.0, 2.0, 1.0], [1.0, 2.0, 0.0]])
    assert top1_agreement(ref, cand) == pytest.approx(0.75)
    err = logit_errors(ref, cand)
    assert err["max_abs_error"] == pytest.approx(1.0)
    assert err["mean_abs_error"] == pytest.approx((0.5 + 1.0 + 1.0) / 12)
    cos1 = (4 + 1.5) / (np.sqrt(5) * np.sqrt(4 + 2.25))
    cos2 = 4 / 5
    assert err["min_cosine"] == pytest.approx(cos2)
    assert err["mean_cosine"] == pytest.approx((1 + cos1 + cos2 + 1) / 4)
    zeros = np.zeros((1, 3))
    assert logit_errors(zeros, zeros)["min_cosine"] == 1.0
    assert logit_errors(zeros, np.ones((1, 3)))["min_cosine"] == 0.0


def test_compare_to_reference_deltas_with_labels():
    names = ("a", "b", "c")
    ref = _onehot_logits(Y_TRUE, 3)  # the reference is always right
    cand = _onehot_logits(Y_PRED, 3)
    out = compare_to_reference(ref, cand, class_names=names, labels=np.array(Y_TRUE))
    assert out["top1_agreement"] == pytest.approx(0.7)
    assert out["reference"]["uar"] == pytest.approx(1.0)
    assert out["delta"]["accuracy"] == pytest.approx(-0.3)
    assert out["delta"]["uar"] == pytest.approx(11 / 18 - 1)
    assert out["delta"]["uf1"] == pytest.approx(57 / 90 - 1)
    assert out["confusion_vs_reference"] == [[5, 1, 0], [1, 1, 0], [0, 1, 1]]
    nolabels = compare_to_reference(ref, cand, class_names=names)
    assert nolabels["labels"] is False and nolabels["delta"] is None


@pytest.mark.parametrize(
    "ref, cand, labels, message",
    [
        (np.zeros((2, 3)), np.zeros((3, 3)), None, "shape"),
        (np.zeros((2, 3)), np.full((2, 3), np.nan), None, "NaN"),
        (np.zeros((2, 3)), np.zeros((2, 3)), np.array([0, 3]), "labels must lie in"),
        (np.zeros((2, 3)), np.zeros((2, 3)), np.array([0.0, 1.0]), "integer"),
    ],
)
def test_bad_inputs_raise_edge_errors(ref, cand, labels, message):
    with pytest.raises(EdgeBuildError, match=message):
        compare_to_reference(ref, cand, class_names=("a", "b", "c"), labels=labels)


# latency ---------------------------------------------------------------------------------------
def test_percentiles_interpolate_linearly():
    pct = percentiles(list(range(1, 11)))
    assert pct == pytest.approx({"p50": 5.5, "p90": 9.1, "p95": 9.55, "p99": 9.91})
    s = summarize([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert s["mean"] == pytest.approx(5.0) and s["std"] == pytest.approx(2.0)
    assert s["min"] == 2.0 and s["max"] == 9.0
    with pytest.raises(EdgeBuildError):
        summarize([])


def test_batch_support_and_tiling():
    fixed = {"onset": TensorSpec("onset", (1, 3, 4, 4))}
    dynamic = {"onset": TensorSpec("onset", ("batch", 3, 4, 4))}
    assert batch_support(fixed, 1) is None
    assert "fixed batch of 1" in batch_support(fixed, 4)
    assert batch_support(dynamic, 8) is None
    assert "not positive" in batch_support(dynamic, 0)
    tiled = tile_batch({"onset": np.arange(3, dtype=np.float32)[None]}, 4)
    assert tiled["onset"].shape == (4, 3) and (tiled["onset"] == [0, 1, 2]).all()


class MatmulRunner(Runner):
    """A real Runner (numpy matmul). With `stages` it also reports a per-stage split the way a
    TensorRT runner does through `last_stages_ms` (values derived from its own timing)."""

    name = "numpy-matmul"

    def __init__(self, stages: bool = False) -> None:
        super().__init__()
        self._w = np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32)
        self._stages = stages
        self.calls = 0
        self.last_stages_ms = None

    @property
    def executor(self) -> str:
        return "numpy " + np.__version__

    def _activate(self) -> None:
        pass

    def _deactivate(self) -> None:
        pass

    def _inputs(self) -> Dict[str, TensorSpec]:
        return {"x": TensorSpec("x", ("batch", 64))}

    def _outputs(self) -> Dict[str, TensorSpec]:
        return {"y": TensorSpec("y", ("batch", 8))}

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        self.calls += 1
        y = feeds["x"] @ self._w
        if self._stages:
            self.last_stages_ms = {"h2d": 0.01, "compute": 0.02 * self.calls, "d2h": 0.01}
        return {"y": y}


def test_measure_latency_counts_warmup_and_iterations():
    feeds = {"x": np.ones((1, 64), np.float32)}
    with MatmulRunner() as runner:
        res = measure_latency(
            runner, feeds, iterations=7, warmup_iterations=3, warmup_seconds=0.0, batch=1
        )
        assert runner.calls == 3 + 7
    assert res.iterations == 7 and res.warmup_iterations == 3
    assert len(res.samples_ms) == 7 and res.executor.startswith("numpy ")
    assert res.p50_ms <= res.p90_ms <= res.p95_ms <= res.p99_ms <= res.max_ms
    assert res.throughput_per_s == pytest.approx(1000.0 / res.mean_ms)
    assert res.stages == {}


def test_measure_latency_duration_and_stages():
    feeds = tile_batch({"x": np.ones((1, 64), np.float32)}, 4)
    seen = []
    with MatmulRunner(stages=True) as runner:
        res = measure_latency(
            runner,
            feeds,
            iterations=2,
            duration_s=0.05,
            warmup_iterations=0,
            warmup_seconds=0.0,
            batch=4,
            preprocess=lambda: seen.append("pre"),
            postprocess=lambda out: seen.append(out["y"].shape),
        )
        calls = runner.calls
    assert res.measured_s >= 0.05 and res.iterations == calls >= 2
    assert res.throughput_per_s == pytest.approx(4 * 1000.0 / res.mean_ms)
    assert set(res.stages) == {"preprocess", "h2d", "compute", "d2h", "postprocess"}
    assert res.stages["h2d"]["mean_ms"] == pytest.approx(0.01)
    # compute grows 0.02 ms per call: its mean is the mean of 0.02 * (1..n)
    assert res.stages["compute"]["mean_ms"] == pytest.approx(0.02 * (calls + 1) / 2)
    assert seen.count("pre") == calls and seen.count((4, 8)) == calls
    with pytest.raises(EdgeBuildError, match="iterations"):
        measure_latency(runner, feeds, iterations=0)


def test_pixel_noise_touches_image_inputs_only_in_pixel_units():
    std = (0.229, 0.224, 0.225)
    feed = {
        "apex": np.zeros((1, 3, 64, 64), np.float32),
        "mask": np.zeros((1, 1, 8, 8), np.float32),
    }
    (noisy,) = with_pixel_noise([feed], std, 2.0, seed=0)
    assert noisy["apex"].dtype == np.float32 and not noisy["mask"].any()
    measured = noisy["apex"].std(axis=(0, 2, 3)) * np.asarray(std) * 255.0
    np.testing.assert_allclose(measured, 2.0, rtol=0.05)  # 2 gray levels per channel
    assert not feed["apex"].any()  # the input is not modified
