"""`edge-build`, `edge-run` and `edge-bench` end to end, including every bad-input exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from benchmarks.cli import main as bench_main  # noqa: E402
from edge.bundle import Bundle  # noqa: E402
from edge.cli.run import main as run_main  # noqa: E402
from quantize.cli.build import main as build_main  # noqa: E402
from tests.official_mmnet import official_state_dict  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.ort]


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "bundle"
    assert build_main(["--out", str(out), "--quiet"]) == 0
    return out


def test_demo_bundle_manifest(demo_bundle, capsys):
    bundle = Bundle.load(demo_bundle)
    m = bundle.manifest
    assert sorted(m["files"]) == [
        "model.fp32.onnx",
        "polygraphy_inputs.json",
        "polygraphy_outputs.json",
        "reference.npz",
        "validation.npz",
        "validation_hard.npz",
    ]
    from edge.models.mmnet_arch import DEMO_CHECKPOINT

    if DEMO_CHECKPOINT.is_file():  # the trained demo ships: the bundle says where it came from
        assert m["model"]["trained"] is True and m["model"]["demo_card"]["variant"] == "casme2-5"
    else:
        assert m["model"]["trained"] is False and m["model"]["seed"] == 0
    assert m["validation"]["samples"] == 40 and m["validation"]["labels"] is True
    assert 0.0 <= m["validation"]["fp32_metrics"]["uar"] <= 1.0
    hard = m["validation_hard"]
    assert hard["file"] == "validation_hard.npz" and hard["tier"] == "hard"
    assert hard["samples"] == 300 and "hard tier" in hard["source"]
    if m["model"]["trained"]:  # the trained demo saturates the standard tier, not the hard one
        assert m["validation"]["fp32_metrics"]["uar"] == 1.0
        assert 0.2 < hard["fp32_metrics"]["uar"] < 0.95
    assert m["calibration"]["samples"] == 128 and m["calibration"]["subjects"] == 8
    assert set(m["calibration"]["class_counts"].values()) == {25, 26}
    assert m["model"]["class_names"] == ["happiness", "repression", "disgust", "surprise", "others"]
    assert m["target"] == {"tensorrt": "10", "opset": 17, "jetpack": "6.1-7.2"}
    assert m["export"]["opset"] == 17
    assert m["simplification"]["tool"] in ("onnxsim", "onnxslim")
    for stage in ("export", "simplify", "final"):
        assert m["parity"][stage]["passed"] and m["parity"][stage]["max_abs_error"] < 1e-4
        assert m["parity"][stage]["samples"] == 4
    assert "onnxruntime" in m["parity"]["final"]["candidate"]
    assert m["engines"] == [] and m["quantization"] is None
    assert bundle.spec.input_names() == ("onset", "apex")


def _polygraphy(bundle: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("polygraphy")
    if not exe.is_file():
        pytest.skip("polygraphy not installed (dev extra)")
    return subprocess.run(
        [str(exe), "run", "model.fp32.onnx", "--onnxrt", *args],
        cwd=bundle,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_polygraphy_checks_the_bundle_with_its_own_references(demo_bundle, tmp_path):
    """The bundle's files are what `polygraphy run --load-inputs/--load-outputs` reads."""
    entry = Bundle.load(demo_bundle).manifest["polygraphy"]
    assert entry["samples"] == 2 and "onnxruntime" in entry["reference"]
    command = entry["host_check"].split()
    assert command[:4] == ["polygraphy", "run", "model.fp32.onnx", "--onnxrt"]
    result = _polygraphy(demo_bundle, *command[4:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Passed: 2/2 iterations" in result.stdout + result.stderr

    # the comparison is real: outputs 1% off fail it
    from polygraphy.comparator import RunResults

    results = RunResults.load(str(demo_bundle / entry["outputs"]))
    for _, iterations in results:
        for iteration in iterations:
            for name in list(iteration.keys()):
                iteration[name] = iteration[name] * 1.01 + 0.01
    wrong = tmp_path / "wrong_outputs.json"
    results.save(str(wrong))
    result = _polygraphy(
        demo_bundle, "--load-inputs", entry["inputs"], "--load-outputs", str(wrong)
    )
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_official_three_class_checkpoint_for_jetpack5(tmp_path, capsys):
    ckpt = tmp_path / "casme2_3.pth"
    torch.save({"module." + k: v for k, v in official_state_dict("casme2-3").items()}, ckpt)
    out = tmp_path / "b3"
    code = build_main(
        [
            "--arch",
            "mmnet",
            "--checkpoint",
            str(ckpt),
            "--precision",
            "fp32",
            "--out",
            str(out),
            "--target-trt",
            "8.5",
            "--simplifier",
            "onnxslim",
            "--dynamic-batch",
        ]
    )
    assert code == 0
    summary = capsys.readouterr().out
    assert "mmnet casme2-3 (3 classes: happiness, surprise, negative)" in summary
    m = Bundle.load(out).manifest
    assert m["model"]["checkpoint"] == "casme2_3.pth" and m["model"]["stripped_prefix"] == "module."
    assert m["export"]["opset"] == 16 and "LayerNormalization" not in m["models"]["fp32"]["ops"]
    assert m["model"]["spec"]["outputs"][0]["shape"] == ["batch", 3]
    assert m["parity"]["batch"]["passed"]


def _assert_nothing_written(parent: Path, name: str):
    assert not (parent / name).exists()
    assert [p.name for p in parent.iterdir() if p.name.startswith("." + name)] == []


@pytest.mark.parametrize(
    "case, message",
    [
        ("truncated", "truncated or not a PyTorch checkpoint"),
        ("wrong-arch", "not an MMNet state_dict"),
        ("shape", "wrong shape"),
        ("missing", "checkpoint not found"),
        ("pickled-code", "never executes pickled code"),
    ],
)
def test_bad_checkpoints_exit_1_and_leave_nothing(tmp_path, capsys, case, message):
    ckpt = tmp_path / "bad.pth"
    if case == "truncated":
        torch.save(official_state_dict(), ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:5000])
    elif case == "wrong-arch":
        torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3)}, ckpt)
    elif case == "pickled-code":
        from tests.test_mmnet_checkpoint import _Payload

        payload = _Payload()
        payload.marker = str(tmp_path / "pwned")
        torch.save({"state_dict": official_state_dict(), "hook": payload}, ckpt)
    elif case == "shape":
        state = official_state_dict()
        state["conv_act.0.weight"] = torch.zeros(90, 3, 3, 3)
        torch.save(state, ckpt)
    code = build_main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("edge-build: error: ")
    assert message in err[0] and str(ckpt) in err[0]
    assert not (tmp_path / "pwned").exists()
    _assert_nothing_written(tmp_path, "out")


def test_parity_above_tolerance_fails_the_build(tmp_path, capsys):
    code = build_main(["--out", str(tmp_path / "out"), "--parity-tolerance", "1e-12", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "disagrees with" in err and "exceeds tolerance 1e-12" in err
    _assert_nothing_written(tmp_path, "out")


def test_foreign_out_dir_is_refused(tmp_path, capsys):
    foreign = tmp_path / "docs"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert build_main(["--out", str(foreign), "--quiet"]) == 1
    assert "is not empty and holds no manifest.json" in capsys.readouterr().err
    assert (foreign / "keep.txt").read_text() == "mine"


def test_edge_run_classifies_a_face_pair(demo_bundle, tmp_path, capsys):
    cv2 = pytest.importorskip("cv2")
    from calib.faces import micro_expression_pair

    onset, apex = micro_expression_pair("astronaut", size=256)
    cv2.imwrite(str(tmp_path / "onset.png"), onset[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "apex.png"), apex[:, :, ::-1])
    code = run_main(
        [
            "--bundle",
            str(demo_bundle),
            "--onset",
            str(tmp_path / "onset.png"),
            "--apex",
            str(tmp_path / "apex.png"),
            "--json",
        ]
    )
    assert code == 0
    line = json.loads(capsys.readouterr().out)
    assert line["label"] in ("happiness", "repression", "disgust", "surprise", "others")
    assert sum(line["scores"].values()) == pytest.approx(1.0)
    assert line["trained"] is Bundle.load(demo_bundle).manifest["model"]["trained"]
    assert "onnxruntime" in line["executor"]
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert (
        run_main(
            [
                "--bundle",
                str(demo_bundle),
                "--onset",
                str(tmp_path / "broken.png"),
                "--apex",
                str(tmp_path / "apex.png"),
            ]
        )
        == 1
    )
    assert "broken.png: not a readable image" in capsys.readouterr().err


def test_edge_bench_checks_reference_and_times(demo_bundle, tmp_path, capsys):
    report = tmp_path / "bench.json"
    assert (
        bench_main(["--bundle", str(demo_bundle), "--iterations", "3", "--json", str(report)]) == 0
    )
    data = json.loads(report.read_text())
    assert data["parity"]["passed"] and data["parity"]["samples"] == 4
    assert data["latency"]["iterations"] == 3 and data["latency"]["p50_ms"] > 0
    # both validation tiers, and FP32's own stability under 0.5 gray levels of noise on each
    assert data["data"]["samples"] == 40 and data["data"]["tiers"]["hard"]["samples"] == 300
    hard = data["precisions"][0]["accuracy_tiers"]["hard"]
    assert hard["top1_agreement"] == 1.0 and hard["delta"]["uar"] == 0.0
    manifest = Bundle.load(demo_bundle).manifest
    assert hard["reference"]["uar"] == pytest.approx(
        manifest["validation_hard"]["fp32_metrics"]["uar"]
    )
    stability = data["noise_stability"]
    assert stability["gray_levels"] == 0.5 and set(stability["tiers"]) == {"standard", "hard"}
    assert all(0.5 < kept <= 1.0 for kept in stability["tiers"].values())
    out = capsys.readouterr().out
    assert "CPUExecutionProvider" in out and "hard tier (300 clips)" in out
    assert "decisions kept under 0.5 gray levels of input noise" in out


def test_console_script_exit_codes(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00" * 10)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "quantize.cli.build",
            "--checkpoint",
            str(bad),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("edge-build: error: ")
    usage = subprocess.run(
        [sys.executable, "-m", "quantize.cli.build", "--precision", "fp64"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_lint_only_writes_nothing(tmp_path, capsys):
    assert build_main(["--out", str(tmp_path / "o"), "--lint-only", "--target-trt", "8.5",
                       "--quiet"]) == 0  # fmt: skip
    assert "lint: clean for TensorRT 8.5" in capsys.readouterr().out
    _assert_nothing_written(tmp_path, "o")


def test_lint_stops_the_build_with_node_names(demo_bundle):
    from edge.errors import EdgeBuildError
    from quantize.pipeline import lint_for_target

    # the demo bundle is opset 17 with LayerNormalization, which TensorRT 8.5 cannot parse
    with pytest.raises(EdgeBuildError, match="LayerNormalization") as err:
        lint_for_target(demo_bundle / "model.fp32.onnx", "8.5")
    assert "would be rejected by TensorRT 8.5" in str(err.value)


def test_summary_prints_the_device_command(tmp_path, capsys):
    assert build_main(["--out", str(tmp_path / "b"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "python3 -m edge.cli.engine --bundle {} --precision fp32".format(tmp_path / "b") in out
    assert Bundle.load(tmp_path / "b").manifest["lint"] == {"target": "10", "findings": []}


def test_fp16_bundle(tmp_path, capsys):
    out = tmp_path / "f16"
    assert build_main(["--precision", "fp16", "--out", str(out), "--calib-samples", "0",
                       "--quiet"]) == 0  # fmt: skip
    m = Bundle.load(out).manifest
    entry = m["models"]["fp16"]
    assert entry["file"] == "model.fp16.onnx" and entry["lint"] == []
    assert entry["measured_vs_fp32"]["top1_agreement"] >= 0.99
    assert entry["measured_vs_fp32"]["samples"] == 40
    assert m["quantization"]["precision"] == "fp16"
    assert "--precision fp16" in capsys.readouterr().out


def test_int8_bundle_is_tensorrt_legal_and_measured(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("nncf")
    from edge.lint import check_qdq, errors

    out = tmp_path / "i8"
    assert build_main(["--precision", "int8", "--out", str(out), "--calib-samples", "16",
                       "--hard-val-samples", "0", "--quiet"]) == 0  # fmt: skip
    m = Bundle.load(out).manifest
    entry = m["models"]["int8"]
    assert entry["file"] == "model.int8.qdq.onnx" and entry["ops"]["QuantizeLinear"] > 0
    assert errors(check_qdq(onnx.load(str(out / entry["file"])))) == []
    q = m["quantization"]
    # the default: all-INT8 start, the 1-point budget decides what stays out (trained demo: nothing)
    assert q["budget"]["max_accuracy_drop"] == 0.01
    assert q["budget"]["final"]["drop"] <= 0.01
    # issue 19's rule: FP32's noise floor from several seeded draws, recorded with the draws
    floor = q["budget"]["noise_floor"]
    assert floor["draws"] == 3 and floor["seeds"] == [0, 1, 2] and floor["gray_levels"] == 0.5
    for name, tier in floor["tiers"].items():
        assert len(tier["draws"]) == 3
        assert q["budget"]["final"]["tiers"][name]["agreement"] >= tier["mean"]
    assert q["macs"]["int8_share"] >= 0.9 and q["macs"]["fp16_by"] == "builder flag"
    # fast bias correction measured (auto): on first; off only measured when on missed the rule
    bias = q["bias_correction"]
    assert bias["mode"] == "auto" and bias["used"] == (bias["chosen"] == "on")
    assert "on" in bias["measured"]
    assert ("off" in bias["measured"]) == (bias["measured"]["on"]["floor_shortfall"] > 0
                                          or bias["measured"]["on"]["drop"] > 0.01)  # fmt: skip
    assert q["calibration"]["samples"] == 16
    assert entry["measured_vs_fp32"]["top1_agreement"] >= 0.95
    # judged as OrtRunner (and so edge-bench) runs it: the Q/DQ lowered for the CPU
    assert "int8 Q/DQ lowered for CPU fusion" in entry["measured_vs_fp32"]["executor"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--calib-data", "/nonexistent/calib"], "calibration folder not found"),
    ],
)
def test_int8_bad_inputs_exit_1_and_leave_nothing(tmp_path, capsys, args, message):
    code = build_main(["--precision", "int8", "--out", str(tmp_path / "q"), "--quiet"] + args)
    assert code == 1
    assert message in capsys.readouterr().err
    _assert_nothing_written(tmp_path, "q")


def test_int8_calibrates_on_a_dataset_layout(tmp_path):
    pytest.importorskip("cv2")
    from calib import synth

    clips = synth.write_generic(tmp_path / "clips", 10, seed=9, frames=5, apex_frame=2)
    out = tmp_path / "q"
    assert build_main(["--precision", "int8", "--quantizer", "ort", "--out", str(out),
                       "--calib-data", f"generic:{clips}", "--calib-samples", "5",
                       "--max-accuracy-drop", "1", "--noise-floor-draws", "0", "--quiet"]) == 0  # fmt: skip
    calibration = Bundle.load(out).manifest["quantization"]["calibration"]
    assert calibration["samples"] == 5 and calibration["source"].startswith("generic:")
    assert sorted(calibration["class_counts"]) == sorted(synth.CLASSES)


def test_edge_engine_check_against_fake_tensorrt(demo_bundle, tmp_path, monkeypatch, capsys):
    """`edge-engine check` on a real bundle: the fake TensorRT's engine runs the bundle's ONNX
    (ONNX Runtime), so parity, accuracy, timing and the report come from real outputs."""
    import shutil

    from benchmarks import engine_check
    from edge.bundle import write_manifest
    from tests.trt.fake_cuda import FakeCudart
    from tests.trt.ort_engine import ort_tensorrt

    root = tmp_path / "bundle"
    shutil.copytree(demo_bundle, root)
    # an INT8 model TensorRT's parser rejects: reported, and the FP32 check still runs
    (root / "model.int8.qdq.onnx").write_bytes(b"BROKEN-INT8")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["models"]["int8"] = {"file": "model.int8.qdq.onnx", "precision": "int8"}
    write_manifest(root, manifest)
    fake = ort_tensorrt(Bundle.load(root), "10.3", broken_marker=b"BROKEN-INT8")
    cudart = FakeCudart()
    monkeypatch.setattr(engine_check, "load_tensorrt", lambda: fake)
    monkeypatch.setattr(engine_check, "load_cudart", lambda: cudart)
    out = tmp_path / "report"
    timing = ["--duration", "0.3", "--warmup-ms", "20"]
    argv = ["check", "--bundle", str(root), "--out", str(out), *timing]
    assert engine_check.main(argv) == 1  # the INT8 engine failed
    printed = capsys.readouterr().out
    assert "int8 engine:" in printed and "edge-bench report" in printed

    report = json.loads((out / "check.json").read_text())
    assert (out / "check.md").is_file()
    assert (out / "check.json").stat().st_size < 300_000  # small enough to send back
    engines = {e["precision"]: e for e in report["engines"]}
    assert engines["fp32"]["built"] and engines["fp32"]["key"]["compute_capability"] == "8.7"
    assert not engines["int8"]["built"]
    assert "TensorRT's ONNX parser failed" in engines["int8"]["error"]
    assert report["passed"] is False and report["tensorrt"] == fake.__version__
    (fp32,) = report["precisions"]
    assert fp32["executor"].startswith(f"TensorRT {fake.__version__}")
    assert fp32["parity"]["passed"] is True and fp32["parity"]["max_abs_error"] < 1e-4
    assert fp32["accuracy"]["top1_agreement"] == 1.0
    assert fp32["accuracy"]["logits"]["max_abs_error"] == 0.0
    assert 0.0 <= fp32["accuracy"]["candidate"]["uar"] <= 1.0  # the validation set is labelled
    (lat,) = fp32["latency"]
    assert lat["iterations"] >= 10 and lat["measured_s"] >= 0.3 and lat["warmup_s"] >= 0.02
    assert set(lat["stages"]) >= {"h2d", "compute", "d2h"}
    assert report["settings"]["timing_rules"].startswith("trtexec: warm-up 20 ms")
    assert "environment" in report and "jetson" in report["environment"]
    # the engine is recorded in the bundle, whose hashes still verify
    assert [e["precision"] for e in Bundle.load(root).manifest["engines"]] == ["fp32"]

    # the host renders it
    assert bench_main(["report", str(out / "check.json"), "--formats", "md"]) == 0
    md = (out / "check.md").read_text()
    assert "Engines built on the device" in md and "FAILED: " in md

    # only FP32: everything passes
    argv = ["check", "--bundle", str(root), "--precisions", "fp32", "--out", str(out), *timing]
    assert engine_check.main(argv) == 0


def test_edge_engine_usage_errors_exit_2_before_any_work(tmp_path, capsys):
    from benchmarks import engine_check

    for extra in (["--iterations", "0"], ["--precisions", "fp64"], ["--duration", "-1"]):
        with pytest.raises(SystemExit) as info:
            engine_check.main(["check", "--bundle", str(tmp_path / "none"), *extra])
        assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        engine_check.main([])
    assert info.value.code == 2
    assert not (tmp_path / "none-check").exists()
