"""`edge-bench` end to end on a real three-precision bundle (ONNX Runtime on the CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.cli import main
from edge.bundle import Bundle
from tests.benchmarks.tiny_bundle import make_tiny_bundle

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.ort

FAST = ["--iterations", "5", "--warmup", "1", "--warmup-seconds", "0"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("tiny") / "bundle")


def _result(out: Path) -> dict:
    return json.loads((out / "bench.json").read_text())


def test_every_precision_side_by_side_with_labels(tiny, tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["--bundle", str(tiny), "--out", str(out), "--batch-sizes", "1,4", *FAST])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    r = _result(out)
    assert [e["precision"] for e in r["precisions"]] == ["fp32", "fp16", "int8"]
    assert r["reference_precision"] == "fp32" and r["passed"] is True
    assert r["data"] == {
        "source": "validation.npz",
        "samples": 40,
        "labelled": True,
        "names": [f"sample-{i}" for i in range(40)],
    }
    fp32, fp16, int8 = r["precisions"]
    assert fp32["parity"]["passed"] is True and fp16["parity"]["passed"] is None
    assert fp32["accuracy"]["top1_agreement"] == 1.0
    assert fp32["accuracy"]["candidate"]["accuracy"] == pytest.approx(0.75)  # by construction
    assert fp32["accuracy"]["delta"]["uar"] == 0.0
    # the coarse INT8 weights really change decisions; FP16 barely moves the logits
    assert int8["accuracy"]["top1_agreement"] < 1.0
    assert int8["accuracy"]["logits"]["max_abs_error"] > fp16["accuracy"]["logits"]["max_abs_error"]
    # deltas are candidate - reference from the same run
    assert int8["accuracy"]["delta"]["accuracy"] == pytest.approx(
        int8["accuracy"]["candidate"]["accuracy"] - fp32["accuracy"]["candidate"]["accuracy"]
    )
    for entry in r["precisions"]:
        assert [lat["batch"] for lat in entry["latency"]] == [1, 4]
        assert entry["latency"][0]["iterations"] >= 5 and entry["latency"][0]["p50_ms"] > 0
        assert "preprocess" in entry["latency"][0]["stages"]
        assert "CPUExecutionProvider" in entry["executor"]
        assert entry["power"] is None  # no tegrastats here
    assert r["environment"]["jetson"] is None or Path("/etc/nv_tegra_release").exists()
    assert r["parity"] == fp32["parity"] and r["latency"]["batch"] == 1  # legacy fields
    md = (out / "bench.md").read_text()
    assert "| int8 |" in md and "Per-class recall" in md
    if (out / "bench.html").exists():
        assert "data:image/png;base64," in (out / "bench.html").read_text()
    assert "int8 on onnxruntime" in stdout and "UAR" in stdout


def test_default_out_is_beside_the_bundle_and_report_rerenders(tiny, tmp_path, capsys):
    assert main(["--bundle", str(tiny), "--precisions", "int8", "--formats", "json", *FAST]) == 0
    out = tiny.parent / "bundle-bench"
    r = _result(out)
    # fp32 joins as the reference even when only int8 is asked for
    assert [e["precision"] for e in r["precisions"]] == ["fp32", "int8"]
    assert sorted(p.name for p in out.iterdir()) == ["bench.json"]
    capsys.readouterr()
    assert (
        main(["report", str(out / "bench.json"), "--out", str(tmp_path / "re"), "--formats", "md"])
        == 0
    )
    assert (tmp_path / "re" / "bench.md").read_text().startswith("# edge-bench: tiny test-5")
    assert main(["report", str(tmp_path / "missing.json")]) == 1
    assert "missing.json: result file not found" in capsys.readouterr().err
    Bundle.load(tiny)  # the bundle itself is untouched


def test_fixed_batch_sizes_are_skipped_and_listed(tmp_path, capsys):
    bundle = make_tiny_bundle(
        tmp_path / "fixed", precisions=("fp32",), fixed_batch=True, labelled_validation=None
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "--bundle",
                str(bundle),
                "--out",
                str(out),
                "--formats",
                "json,md",
                "--batch-sizes",
                "1,2",
                *FAST,
            ]
        )
        == 0
    )
    r = _result(out)
    assert [lat["batch"] for lat in r["precisions"][0]["latency"]] == [1]
    assert r["skipped"] == [
        "fp32 batch 2: input 'onset' has a fixed batch of 1 (export with --dynamic-batch)"
    ]
    assert r["data"]["source"] == "reference.npz" and r["data"]["labelled"] is False
    assert r["precisions"][0]["accuracy"]["candidate"] is None
    assert "skipped  fp32 batch 2" in capsys.readouterr().out


def test_declared_tolerance_failure_exits_1(tmp_path, capsys):
    bundle = make_tiny_bundle(
        tmp_path / "b",
        precisions=("fp32", "int8"),
        labelled_validation=None,
        extra_model_fields={"int8": {"tolerance": 1e-3}},
    )
    out = tmp_path / "out"
    assert main(["--bundle", str(bundle), "--out", str(out), "--formats", "json", *FAST]) == 1
    r = _result(out)  # the result is still written, so the failure can be read
    assert r["passed"] is False and r["precisions"][1]["parity"]["passed"] is False
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--precisions", "int4"], "no int4 model in this bundle (has: fp32, fp16, int8)"),
        (["--formats", "pdf"], "--formats: unknown pdf"),
        (["--iterations", "0"], "--iterations must be >= 1"),
        (["--data", "nowhere.npz"], "nowhere.npz: evaluation data not found"),
    ],
)
def test_bad_requests_exit_1_with_one_line(tiny, tmp_path, capsys, args, message):
    assert main(["--bundle", str(tiny), "--out", str(tmp_path / "o"), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edge-bench: error: ") and message in err[0]


def test_external_data_with_bad_labels_is_refused(tiny, tmp_path, capsys):
    from tests.benchmarks.tiny_bundle import frames

    data = tmp_path / "val.npz"
    np.savez(data, frames=frames(3, seed=5), labels=np.array([0, 1, 9]))
    assert (
        main(["--bundle", str(tiny), "--data", str(data), "--out", str(tmp_path / "o"), *FAST]) == 1
    )
    assert "labels must be class indices 0..4" in capsys.readouterr().err
    np.savez(data, frames=frames(3, seed=5), labels=np.array([0, 1, 4]))
    assert (
        main(
            [
                "--bundle",
                str(tiny),
                "--data",
                str(data),
                "--out",
                str(tmp_path / "o"),
                "--formats",
                "json",
                *FAST,
            ]
        )
        == 0
    )
    r = _result(tmp_path / "o")
    assert r["data"]["samples"] == 3 and r["data"]["labelled"] is True


def test_bench_proxy_interleaves_every_precision(tiny, capsys):
    from benchmarks.bench_proxy import main as proxy_main
    from benchmarks.bench_proxy import proxy_speedups

    res = proxy_speedups(Bundle.load(tiny), rounds=2, iterations=3)
    assert list(res) == ["fp32", "fp16", "int8"]
    assert all(len(r["round_p50s"]) == 2 and r["summary"]["p50"] > 0 for r in res.values())
    assert proxy_main(["--bundle", str(tiny), "--rounds", "1", "--iterations", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[0] == "fp32" and lines[2].split()[4] == "1.00x"
    assert [line.split()[0] for line in lines[2:]] == ["fp32", "fp16", "int8"]


def test_trt_backend_without_tensorrt_names_the_package(tiny, tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    args = ["--bundle", str(tiny), "--backend", "trt", "--out", str(tmp_path / "o")]
    assert main(args + FAST) == 1
    assert "apt install python3-libnvinfer" in capsys.readouterr().err
