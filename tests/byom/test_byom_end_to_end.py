"""A user with only an ONNX file and a spec file: `edge-build --precision int8` -> bundle ->
`edge-bench` -> `edge-run` on a generated video, through the real CLIs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.byom.cli_runs import bench_by_precision, run_on_generated_video
from tests.byom.tiny import spec_dict, tiny_onnx, write_spec

pytest.importorskip("onnxruntime")
pytestmark = [pytest.mark.ort]


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    from quantize.cli.build import main as build_main

    work = tmp_path_factory.mktemp("byom")
    model = tiny_onnx(work / "tiny.onnx", opset=13)  # converted up to the target's opset 17
    spec = write_spec(work / "tiny.yaml", spec_dict())
    out = work / "bundle"
    # a wide budget: one quantization whatever one borderline clip does (the search has its own
    # tests in tests/quantize); agreement is asserted below
    assert build_main(["--model", str(model), "--spec", str(spec), "--precision", "int8",
                       "--out", str(out), "--quiet", "--calib-samples", "32",
                       "--val-samples", "20", "--hard-val-samples", "20",
                       "--max-accuracy-drop", "0.5", "--noise-floor-draws", "0"]) == 0  # fmt: skip
    return out


def test_the_bundle_records_the_model_file_the_spec_and_int8(tiny_bundle):
    from edge.bundle import Bundle

    bundle = Bundle.load(tiny_bundle)
    m = bundle.manifest
    assert m["model"]["model_file"] == "tiny.onnx" and m["model"]["model_format"] == "onnx"
    assert m["model"]["model_file_opset"] == 13 and len(m["model"]["model_file_sha256"]) == 64
    assert m["export"]["exporter"] == "user ONNX file tiny.onnx (converted from opset 13)"
    assert m["export"]["torch_version"] is None and m["export"]["opset"] == 17
    assert "the file as given" in m["parity"]["export"]["reference"]
    assert bundle.spec.arch == "tiny-motion" and bundle.spec.input_names() == ("onset", "apex")
    assert bundle.spec.preprocessing.mean == (0.5, 0.5, 0.5)
    macs = m["quantization"]["macs"]
    assert macs["int8_share"] > 0.9 and m["quantization"]["budget"] is not None
    assert m["models"]["int8"]["measured_vs_fp32"]["top1_agreement"] >= 0.9
    assert m["calibration"]["samples"] == 32 and m["validation"]["samples"] == 20
    # the reference logits vary with the input: agreement is not a constant model's tautology
    logits = np.load(tiny_bundle / "validation.npz")["reference_logits"]
    assert float(logits.std(0).mean()) > 1e-2 and len(set(logits.argmax(1).tolist())) >= 2


def test_edge_bench_measures_both_precisions(tiny_bundle, tmp_path):
    by_precision = bench_by_precision(tiny_bundle, tmp_path / "bench")
    assert set(by_precision) == {"fp32", "int8"}
    assert by_precision["int8"]["accuracy"]["top1_agreement"] >= 0.9


def test_edge_run_reports_events_on_a_generated_video(tiny_bundle, tmp_path):
    video, records = run_on_generated_video(tiny_bundle, tmp_path)
    events = [r for r in records if r["type"] == "event"]
    assert [e["apex_frame"] for e in events] == pytest.approx([e.apex for e in video.events],
                                                              abs=1)  # fmt: skip
    classes = set(spec_dict()["classes"])
    for event in events:
        assert event["label"] in classes and set(event["scores"]) == classes
    assert "int8" in records[-1]["executor"] or "Q/DQ" in records[-1]["executor"]


def test_edge_engine_check_against_fake_tensorrt(tiny_bundle, tmp_path, monkeypatch, capsys):
    """The device step on a bring-your-own bundle: the fake TensorRT (tests/trt) parses and runs
    the bundle's FP32 and INT8 ONNX with ONNX Runtime, so parity and accuracy are real."""
    import shutil

    from benchmarks import engine_check
    from edge.bundle import Bundle
    from tests.trt.fake_cuda import FakeCudart
    from tests.trt.ort_engine import ort_tensorrt

    root = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, root)
    fake = ort_tensorrt(Bundle.load(root), "10.3")
    monkeypatch.setattr(engine_check, "load_tensorrt", lambda: fake)
    monkeypatch.setattr(engine_check, "load_cudart", lambda: FakeCudart())
    out = tmp_path / "report"
    argv = ["check", "--bundle", str(root), "--out", str(out), "--duration", "0.2",
            "--warmup-ms", "10"]  # fmt: skip
    assert engine_check.main(argv) == 0, capsys.readouterr().out
    report = json.loads((out / "check.json").read_text())
    assert {e["precision"] for e in report["engines"] if e["built"]} == {"fp32", "int8"}
    by_precision = {p["precision"]: p for p in report["precisions"]}
    assert by_precision["fp32"]["parity"]["passed"]
    assert by_precision["int8"]["accuracy"]["top1_agreement"] >= 0.9


def test_a_flow_input_model_builds_int8_and_classifies_a_pair(tmp_path, capsys):
    """flow:image (u, v, strain) from onset and apex: calibration, validation and edge-run
    compute it with the same code (edge.flow)."""
    cv2 = pytest.importorskip("cv2")
    from calib.faces import micro_expression_pair
    from edge.bundle import Bundle
    from edge.cli.run import main as run_main
    from quantize.cli.build import main as build_main
    from tests.byom.tiny import flow_spec_dict

    model = tiny_onnx(tmp_path / "flow.onnx", size=28, names=("flow",))
    spec = write_spec(tmp_path / "flow.yaml", flow_spec_dict())
    out = tmp_path / "bundle"
    assert build_main(["--model", str(model), "--spec", str(spec), "--precision", "int8",
                       "--out", str(out), "--quiet", "--calib-samples", "16",
                       "--val-samples", "10", "--hard-val-samples", "0",
                       "--max-accuracy-drop", "0.5", "--noise-floor-draws", "0"]) == 0  # fmt: skip
    capsys.readouterr()
    bundle = Bundle.load(out)
    prep = bundle.spec.preprocessing
    assert prep.feeds == (("flow", "flow:image"),) and prep.flow.method == "farneback"
    assert prep.frames == ("onset", "apex") and prep.storage_size == (112, 112)
    assert np.load(out / "validation.npz")["frames"].shape[1:] == (2, 112, 112, 3)
    assert bundle.manifest["calibration"]["samples"] == 16
    onset, apex = micro_expression_pair("astronaut", size=112)
    cv2.imwrite(str(tmp_path / "onset.png"), onset[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "apex.png"), apex[:, :, ::-1])
    assert run_main(["--bundle", str(out), "--onset", str(tmp_path / "onset.png"), "--apex",
                     str(tmp_path / "apex.png"), "--precision", "int8", "--json"]) == 0  # fmt: skip
    record = json.loads(capsys.readouterr().out)
    assert record["label"] in record["scores"] and record["trained"] is True


def test_fp16_and_dataset_calibration_work_from_the_spec(tmp_path):
    """FP16, and INT8 calibrated on a dataset layout (read and registered as for the
    registered architectures), for a flow model known only by its spec file."""
    pytest.importorskip("cv2")
    from calib import synth
    from edge.bundle import Bundle
    from quantize.cli.build import main as build_main
    from tests.byom.tiny import flow_spec_dict

    model = tiny_onnx(tmp_path / "m.onnx")
    spec = write_spec(tmp_path / "m.yaml", spec_dict())
    out = tmp_path / "fp16"
    assert build_main(["--model", str(model), "--spec", str(spec), "--precision", "fp16",
                       "--out", str(out), "--quiet", "--val-samples", "10",
                       "--hard-val-samples", "0"]) == 0  # fmt: skip
    fp16 = Bundle.load(out).manifest["models"]["fp16"]
    assert fp16["measured_vs_fp32"]["top1_agreement"] >= 0.9

    flow = tiny_onnx(tmp_path / "flow.onnx", size=28, names=("flow",))
    flow_spec = write_spec(tmp_path / "flow.yaml", flow_spec_dict())
    clips = synth.write_generic(tmp_path / "clips", 8, seed=9, frames=5, apex_frame=2)
    out = tmp_path / "int8"
    assert build_main(["--model", str(flow), "--spec", str(flow_spec), "--precision", "int8",
                       "--out", str(out), "--quiet", "--calib-data", f"generic:{clips}",
                       "--calib-samples", "6", "--val-samples", "10", "--hard-val-samples", "0",
                       "--max-accuracy-drop", "1", "--noise-floor-draws", "0"]) == 0  # fmt: skip
    calibration = Bundle.load(out).manifest["quantization"]["calibration"]
    assert calibration["samples"] == 6 and calibration["source"].startswith("generic:")
