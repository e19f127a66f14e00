"""The walkthrough of docs/byo.md, run: the shipped STSTNet-style example (an ONNX file and its
spec file, nothing else) -> `edge-build --precision int8` -> `edge-bench` -> `edge-run` on a
generated video."""

from __future__ import annotations

import shutil

import pytest

from tests.byom.cli_runs import bench_by_precision, run_on_generated_video

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")
pytestmark = [pytest.mark.ort]


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """What a user has: the ONNX file and the spec file, copied away from the project."""
    from calib.examples import ststnet

    work = tmp_path_factory.mktemp("ststnet")
    shutil.copy(ststnet.ONNX_FILE, work / "ststnet.onnx")
    shutil.copy(ststnet.SPEC_FILE, work / "ststnet.spec.yaml")
    return work


@pytest.fixture(scope="module")
def bundle(user_files):
    from quantize.cli.build import main as build_main

    out = user_files / "bundle"
    # The path under test is the walkthrough's, not the budget search (tests/quantize has it):
    # with 30 hard clips one flipped decision is 3.3 points, so the default 1-point budget
    # would turn a borderline clip into a search; a wide budget keeps one quantization, and
    # agreement is asserted below.
    assert build_main(["--model", str(user_files / "ststnet.onnx"),
                       "--spec", str(user_files / "ststnet.spec.yaml"), "--precision", "int8",
                       "--out", str(out), "--quiet", "--calib-samples", "32",
                       "--val-samples", "30", "--hard-val-samples", "30",
                       "--max-accuracy-drop", "0.5", "--noise-floor-draws", "0"]) == 0  # fmt: skip
    return out


def test_int8_bundle_with_mac_share_and_fidelity(bundle):
    from edge.bundle import Bundle
    from edge.lint import errors, lint_onnx

    m = Bundle.load(bundle).manifest
    assert m["model"]["arch"] == "ststnet" and m["model"]["model_file"] == "ststnet.onnx"
    assert m["export"]["exporter"] == "user ONNX file ststnet.onnx (converted from opset 16)"
    # a trained flow model: well above chance (1/3) on the labelled synthetic tier
    assert m["validation"]["fp32_metrics"]["uar"] > 0.6
    q = m["quantization"]
    assert q["macs"]["int8_share"] > 0.9
    tiers = q["budget"]["final"]["tiers"]
    assert set(tiers) == {"standard", "hard"}
    # built with --noise-floor-draws 0 (one quantization); the floor's flow-aware noise path
    # (noise on the frames, before the flow) runs here on the bundle's hard tier
    assert q["budget"]["noise_floor"] is None
    import numpy as np

    from edge.noise import noisy_feeds
    from edge.runtime.ort import OrtRunner
    from quantize.data import ValidationSet

    spec = Bundle.load(bundle).spec
    hard = ValidationSet.load(bundle / "validation_hard.npz", tier="hard")
    feeds = hard.feeds(spec)
    noisy = noisy_feeds(spec, feeds, hard.frames, 0.5, seed=0)
    name = spec.outputs[0].name
    with OrtRunner(bundle / m["models"]["fp32"]["file"]) as runner:
        clean = np.concatenate([runner.infer(f)[name] for f in feeds]).argmax(1)
        kept = np.concatenate([runner.infer(f)[name] for f in noisy]).argmax(1) == clean
    assert 0.5 < kept.mean() <= 1.0
    assert q["budget"]["final"]["drop"] <= q["budget"]["max_accuracy_drop"]
    assert m["models"]["int8"]["measured_vs_fp32"]["top1_agreement"] >= 0.9
    assert not errors(lint_onnx(bundle / m["models"]["int8"]["file"], "10"))


def test_edge_bench_on_the_bundle(bundle, tmp_path):
    by_precision = bench_by_precision(bundle, tmp_path / "bench")
    assert set(by_precision) == {"fp32", "int8"}
    assert by_precision["int8"]["accuracy"]["top1_agreement"] >= 0.9


def test_edge_run_gives_events_on_a_generated_video(bundle, tmp_path):
    video, records = run_on_generated_video(bundle, tmp_path)
    events = [r for r in records if r["type"] == "event"]
    assert [e["apex_frame"] for e in events] == pytest.approx([e.apex for e in video.events],
                                                              abs=1)  # fmt: skip
    for event in events:
        assert event["label"] in ("negative", "positive", "surprise")
        assert sum(event["scores"].values()) == pytest.approx(1.0, abs=1e-4)
