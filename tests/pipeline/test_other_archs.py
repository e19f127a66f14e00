"""AFNet-M and FAMNet through the whole path: `edge-build --precision int8` on the shipped demos,
lint for the targets, INT8 agreement with FP32 on synthetic clips (labels, clip frames, depth
proxy), `edge-bench` on the bundle, and `edge-run` on a video (spotting and given onset/apex,
depth from a folder or the proxy, AU scores for FAMNet)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.bundle import Bundle
from edge.cli.run import main as run_main

pytestmark = [pytest.mark.torch, pytest.mark.ort]
cv2 = pytest.importorskip("cv2")


def _build(tmp_path_factory, arch: str, *extra: str):
    from quantize.cli.build import main as build_main

    out = tmp_path_factory.mktemp(arch) / "bundle"
    args = ["--arch", arch, "--precision", "int8", "--out", str(out), "--quiet"]
    # the path under test is the architecture's, not the budget search (tests/quantize has it):
    # a wide budget and no noise floor keep the build to one quantization; agreement is
    # asserted below
    args += ["--calib-samples", "48", "--val-samples", "30", "--max-accuracy-drop", "0.5",
             "--noise-floor-draws", "0", *extra]  # fmt: skip
    assert build_main(args) == 0
    return out


@pytest.fixture(scope="module")
def afnet_bundle(tmp_path_factory):
    return _build(tmp_path_factory, "afnet_m")


@pytest.fixture(scope="module")
def famnet_bundle(tmp_path_factory):
    # FAMNet keeps NNCF's minmax ranges here: with the default mean_minmax its INT8 agreed on
    # 0.867 of 30 standard clips (docs/quantization.md); this test is about the path
    return _build(tmp_path_factory, "famnet", "--calib-ranges", "minmax")


@pytest.mark.parametrize("which", ["afnet_bundle", "famnet_bundle"])
def test_int8_bundle_agrees_with_fp32_and_is_legal(which, request):
    from edge.lint import errors, lint_onnx
    from edge.lint.qdq import check_qdq

    bundle = Bundle.load(request.getfixturevalue(which))
    manifest = bundle.manifest
    assert manifest["model"]["trained"] and manifest["model"]["demo_card"]["held_out"]
    int8 = manifest["models"]["int8"]
    measured = int8["measured_vs_fp32"]
    # The demos answer differently for different clips (not a constant model), so agreement
    # on the labelled synthetic validation split is evidence, not a tautology.
    validation = np.load(bundle.root / "validation.npz")
    logits = validation["reference_logits"]
    assert len(set(logits.argmax(1).tolist())) >= 2 and float(logits.std(0).mean()) > 0.05
    assert measured["top1_agreement"] >= 0.9
    onnx = pytest.importorskip("onnx")
    path = bundle.onnx_path("int8")
    assert not errors(lint_onnx(path, "10"))
    assert not check_qdq(onnx.load(str(path)))
    frames = validation["frames"]
    assert frames.shape[1] == len(bundle.spec.preprocessing.frames)


def test_famnet_bundle_for_tensorrt_8_5_lints_clean(tmp_path_factory):
    from edge.lint import errors, lint_onnx

    bundle = Bundle.load(
        _build(tmp_path_factory, "famnet", "--target-trt", "8.5", "--calib-samples", "16")
    )
    assert bundle.manifest["target"]["opset"] == 16
    for precision in ("fp32", "int8"):
        assert not errors(lint_onnx(bundle.onnx_path(precision), "8.5"))


def test_famnet_spec_in_the_bundle_names_aus_and_clip_roles(famnet_bundle):
    spec = Bundle.load(famnet_bundle).spec
    assert spec.output_names() == ("logits", "au_logits") and len(spec.au_names) == 12
    roles = spec.preprocessing.frames
    assert roles[0] == "apex" and roles[1:] == tuple(f"clip:{k}" for k in range(8))
    assert dict(spec.preprocessing.feeds) == {"apex": "apex", "clip": "clip"}


def test_edge_bench_runs_both_precisions(afnet_bundle, tmp_path):
    from benchmarks.cli import main as bench_main

    out = tmp_path / "bench"
    code = bench_main(["--bundle", str(afnet_bundle), "--iterations", "3", "--duration", "0",
                       "--warmup", "1", "--warmup-seconds", "0", "--out", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads((out / "bench.json").read_text())
    by_precision = {r["precision"]: r for r in report["precisions"]}
    assert set(by_precision) == {"fp32", "int8"}
    assert by_precision["int8"]["accuracy"]["top1_agreement"] >= 0.9


def _events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_edge_run_famnet_spots_events_and_reports_aus(famnet_bundle, video_720p, tmp_path):
    events_out = tmp_path / "events.jsonl"
    code = run_main(["--bundle", str(famnet_bundle), str(video_720p.path), "--precision", "int8",
                     "--events-out", str(events_out)])  # fmt: skip
    assert code == 0
    events = [r for r in _events(events_out) if r["type"] == "event"]
    assert [e["apex_frame"] for e in events] == pytest.approx(
        [e.apex for e in video_720p.events], abs=1
    )
    for event in events:
        assert set(event["au_scores"]) == set(Bundle.load(famnet_bundle).spec.au_names)
        assert set(event["aus"]) <= set(event["au_scores"])


def test_edge_run_afnet_needs_depth_and_takes_a_folder_or_the_proxy(
    afnet_bundle, video_720p, tmp_path, capsys
):
    base = ["--bundle", str(afnet_bundle), str(video_720p.path), "--onset", "30", "--apex", "36"]
    assert run_main(base) == 1
    assert "--depth" in capsys.readouterr().err

    out = tmp_path / "proxy.jsonl"
    assert run_main(base + ["--depth", "proxy", "--events-out", str(out)]) == 0
    proxy_event = [r for r in _events(out) if r["type"] == "event"][0]
    assert proxy_event["depth"] == "proxy (not measured)"

    # A depth camera's frames: 16-bit PNGs in millimetres, one per video frame.
    from edge.depth import face_depth_proxy

    folder = tmp_path / "depth"
    folder.mkdir()
    height, width = 720, 1280
    surface = cv2.resize(face_depth_proxy((360, 360)), (360, 360))
    for index in range(video_720p.frames):
        depth = np.full((height, width), 900, np.uint16)
        depth[180:540, 460:820] = surface.astype(np.uint16)
        cv2.imwrite(str(folder / f"{index + 1}.png"), depth)
    out = tmp_path / "folder.jsonl"
    assert run_main(base + ["--depth", str(folder), "--events-out", str(out)]) == 0
    event = [r for r in _events(out) if r["type"] == "event"][0]
    assert event["depth"] == f"folder {folder}" and event["label"] in event["scores"]


def test_edge_run_image_mode_for_afnet(afnet_bundle, tmp_path, capsys):
    from calib.faces import face_crop

    apex = tmp_path / "apex.png"
    cv2.imwrite(str(apex), face_crop("astronaut", 112)[:, :, ::-1])
    assert run_main(["--bundle", str(afnet_bundle), "--apex", str(apex), "--depth", "proxy",
                     "--json"]) == 0  # fmt: skip
    record = json.loads(capsys.readouterr().out)
    assert record["label"] in record["scores"] and record["depth"] == "proxy (not measured)"
    assert run_main(["--bundle", str(afnet_bundle), "--apex", str(apex)]) == 1
    assert "--depth" in capsys.readouterr().err


def test_edge_run_image_mode_refuses_a_clip_model(famnet_bundle, tmp_path, capsys):
    from calib.faces import face_crop

    apex = tmp_path / "apex.png"
    cv2.imwrite(str(apex), face_crop("astronaut", 112)[:, :, ::-1])
    assert run_main(["--bundle", str(famnet_bundle), "--onset", str(apex), "--apex",
                     str(apex)]) == 1  # fmt: skip
    assert "run it on a VIDEO" in capsys.readouterr().err
