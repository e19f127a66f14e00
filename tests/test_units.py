"""numpy-only pieces: spec round trip, preprocessing arithmetic, bundle staging and verification,
parity metrics, latency percentiles, the Runner contract."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from benchmarks.latency import measure_latency, percentiles
from edge.bundle import Bundle, staged_directory, write_manifest
from edge.errors import BundleError, EdgeBuildError, ParityError
from edge.models.mmnet_spec import VARIANTS, mmnet_spec
from edge.parity import compare_outputs
from edge.preprocess import normalize_frame, prepare_inputs
from edge.runtime.base import Runner, RunnerError
from edge.spec import ModelSpec, TensorSpec


def spec5() -> ModelSpec:
    return mmnet_spec(VARIANTS["casme2-5"])


def test_spec_round_trip_through_json():
    spec = spec5().with_batch("batch")
    again = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert again.inputs[0].shape == ("batch", 3, 224, 224)


def test_class_name_override_is_checked():
    spec = spec5()
    assert spec.with_class_names(list("abcde")).class_names == tuple("abcde")
    with pytest.raises(EdgeBuildError, match="3 class names given"):
        spec.with_class_names(["a", "b", "c"])
    with pytest.raises(EdgeBuildError, match="unique"):
        spec.with_class_names(list("aabcd"))


def test_normalisation_matches_imagenet_formula():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    out = normalize_frame(frame, spec5().preprocessing)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = ((frame / 255.0 - mean) / std).transpose(2, 0, 1)
    assert out.dtype == np.float32 and out.shape == (3, 224, 224)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_prepare_inputs_resizes_and_names_frames():
    pytest.importorskip("cv2")
    frame = np.full((300, 260, 3), 128, np.uint8)
    feeds = prepare_inputs(spec5(), {"onset": frame, "apex": frame})
    assert set(feeds) == {"onset", "apex"} and feeds["apex"].shape == (1, 3, 224, 224)
    with pytest.raises(EdgeBuildError, match="missing \\['apex'\\]"):
        prepare_inputs(spec5(), {"onset": frame})


def test_staged_directory_success_and_failure(tmp_path):
    target = tmp_path / "bundle"
    with pytest.raises(RuntimeError), staged_directory(target) as staging:
        (staging / "half.onnx").write_bytes(b"x")
        raise RuntimeError("stage failed")
    assert not target.exists() and list(tmp_path.iterdir()) == []

    with staged_directory(target) as staging:
        (staging / "model.onnx").write_bytes(b"onnx")
        write_manifest(staging, {"models": {}})
    assert (target / "model.onnx").read_bytes() == b"onnx"
    assert oct(os.stat(target).st_mode & 0o777) != "0o700"
    # an existing bundle is replaced; nothing else is left beside it
    with staged_directory(target) as staging:
        (staging / "model.onnx").write_bytes(b"new")
        write_manifest(staging, {"models": {}})
    assert (target / "model.onnx").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_staged_directory_refuses_foreign_directory(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not empty"), staged_directory(tmp_path / "mine"):
        pass
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_bundle_verify_names_damaged_files(tmp_path):
    with staged_directory(tmp_path / "b") as staging:
        (staging / "a.bin").write_bytes(b"aaaa")
        (staging / "b.bin").write_bytes(b"bbbb")
        write_manifest(staging, {"models": {}})
    Bundle.load(tmp_path / "b")
    (tmp_path / "b" / "a.bin").write_bytes(b"aaab")
    (tmp_path / "b" / "b.bin").unlink()
    with pytest.raises(BundleError, match="a.bin does not match its sha256; b.bin is missing"):
        Bundle.load(tmp_path / "b")
    with pytest.raises(BundleError, match="not a bundle"):
        Bundle.load(tmp_path)


def test_parity_metrics_by_hand():
    ref = [{"logits": np.array([[1.0, 2.0, 3.0]])}, {"logits": np.array([[3.0, 0.0, 0.0]])}]
    cand = [{"logits": np.array([[1.0, 2.0, 3.5]])}, {"logits": np.array([[0.0, 3.0, 0.0]])}]
    report = compare_outputs(ref, cand, tolerance=0.1, reference_name="r", candidate_name="c")
    assert report.max_abs_error == 3.0
    assert report.mean_abs_error == pytest.approx((0.5 + 3 + 3) / 6)
    assert report.top1_agreement == 0.5
    assert report.min_cosine == pytest.approx(0.0)
    assert not report.passed
    with pytest.raises(ParityError, match="c disagrees with r"):
        report.raise_if_failed()
    with pytest.raises(ParityError, match="NaN"):
        compare_outputs(
            ref,
            [{"logits": np.array([[np.nan, 0, 0]])}] * 2,
            tolerance=1,
            reference_name="r",
            candidate_name="c",
        )


def test_percentiles_by_hand():
    pct = percentiles(np.arange(1, 101, dtype=float))
    assert pct == pytest.approx({"p50": 50.5, "p90": 90.1, "p95": 95.05, "p99": 99.01})


class EchoRunner(Runner):
    """A backend with the smallest real behaviour: doubles its input."""

    name = "echo"

    def __init__(self):
        super().__init__()
        self.activations = 0

    def _activate(self):
        self.activations += 1

    def _deactivate(self):
        pass

    def _inputs(self):
        return {"x": TensorSpec("x", ("batch", 2), "float32")}

    def _outputs(self):
        return {"y": TensorSpec("y", ("batch", 2), "float32")}

    def _infer(self, feeds):
        return {"y": feeds["x"] * 2}


def test_runner_contract():
    runner = EchoRunner()
    with pytest.raises(RunnerError, match="not active"):
        runner.infer({"x": np.zeros((1, 2), np.float32)})
    with runner:
        x = np.ones((3, 2), np.float32)
        out = runner.infer({"x": x})
        np.testing.assert_array_equal(out["y"], 2 * x)
        assert runner.last_latency_ms is not None and runner.last_latency_ms >= 0
        with pytest.raises(RunnerError, match="missing \\['x'\\]"):
            runner.infer({"z": x})
        with pytest.raises(RunnerError, match="dtype float64"):
            runner.infer({"x": x.astype(np.float64)})
        with pytest.raises(RunnerError, match="shape \\[3, 3\\]"):
            runner.infer({"x": np.ones((3, 3), np.float32)})
        result = measure_latency(
            runner, {"x": x}, iterations=10, warmup_iterations=2, warmup_seconds=0.0
        )
        assert result.iterations == 10 and result.p50_ms <= result.p99_ms
    assert not runner.is_active
