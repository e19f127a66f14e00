"""Report rendering from a result document: Markdown content, a self-contained HTML page whose
plots decode as PNG images, re-rendering, and (when Chromium is installed) a real render."""

from __future__ import annotations

import base64
import copy
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from benchmarks.report import (
    RESULT_KIND,
    load_result,
    render_html,
    render_markdown,
    speedups,
    write_json,
    write_reports,
)
from edge.errors import EdgeBuildError
from edge.metrics import compare_to_reference

CLASSES = ["happiness", "repression", "disgust", "surprise", "others"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _latency(batch, base, rng):
    samples = (base + rng.gamma(2.0, base / 20, size=200)).round(4).tolist()
    a = np.asarray(samples)
    return {
        "executor": "onnxruntime 1.31.1 (CPUExecutionProvider)",
        "batch": batch,
        "iterations": len(samples),
        "warmup_iterations": 5,
        "warmup_s": 0.2,
        "measured_s": float(a.sum() / 1000),
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p95_ms": float(np.percentile(a, 95)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
        "std_ms": float(a.std()),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
        "throughput_per_s": batch * 1000 / float(a.mean()),
        "timer": "host perf_counter_ns around Runner.infer",
        "stages": {"preprocess": {"mean_ms": 1.5, "p50_ms": 1.4, "p99_ms": 2.0}},
        "samples_ms": samples,
    }


def synthetic_result(labelled=True):
    """A three-precision result as `edge-bench` writes it (numbers made up, shape real)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=60)
    ref = rng.standard_normal((60, 5))
    ref[np.arange(60), labels] += 2.5  # the reference is mostly right
    entries = []
    for precision, base, noise in (("fp32", 20.0, 0.0), ("fp16", 10.0, 0.05), ("int8", 6.0, 0.8)):
        cand = ref + rng.standard_normal(ref.shape) * noise
        entries.append(
            {
                "precision": precision,
                "file": f"model.{precision}.onnx",
                "executor": "onnxruntime 1.31.1 (CPUExecutionProvider)",
                "parity": {
                    "max_abs_error": 1e-6,
                    "top1_agreement": 1.0,
                    "samples": 4,
                    "passed": True if precision == "fp32" else None,
                    "tolerance": None,
                },
                "accuracy": compare_to_reference(
                    ref, cand, class_names=CLASSES, labels=labels if labelled else None
                ),
                "latency": [_latency(1, base, rng), _latency(8, base * 5, rng)],
                "skipped_batches": {},
                "power": {"samples": 12, "rails_mean_mw": {"VDD_IN": 5000.0 - base * 10}}
                if precision != "fp32"
                else None,
            }
        )
    return {
        "kind": RESULT_KIND,
        "schema_version": 1,
        "created_utc": "2026-11-21T00:00:00Z",
        "command": "edge-bench --bundle build/demo",
        "bundle": {
            "path": "build/demo",
            "model": "mmnet casme2-5",
            "trained": False,
            "class_names": CLASSES,
            "target": {"tensorrt": "10", "opset": 17},
        },
        "settings": {
            "backend": "ort",
            "iterations": 200,
            "duration_s": 0.0,
            "warmup_iterations": 5,
            "warmup_seconds": 0.2,
            "batch_sizes": [1, 8],
        },
        "data": {"source": "validation.npz", "samples": 60, "labelled": labelled},
        "environment": {
            "host": {
                "hostname": "orin",
                "os": "Linux",
                "cpu_model": None,
                "cpu_count": 6,
                "cpu_usable": 6,
                "python": "3.10.12",
            },
            "libraries": {"numpy": "1.26.4", "tensorrt": "10.3.0", "matplotlib": None},
            "gpu": None,
            "jetson": {
                "model": "NVIDIA Jetson Orin Nano Developer Kit",
                "l4t": "36.4.3",
                "jetpack": "6.2+b77",
                "nvpmodel": {"name": "MAXN_SUPER", "id": 2},
                "clocks": {"cpu_locked": True, "gpu_locked": True, "locked": True},
                "tegrastats": True,
            },
        },
        "reference_precision": "fp32",
        "precisions": entries,
        "skipped": ["int8 batch 16: input 'onset' has a fixed batch of 1"],
        "passed": True,
    }


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.external, self.tags, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs)
        for key in ("src", "href"):
            value = attrs.get(key)
            if value and not value.startswith("data:"):
                self.external.append((tag, value))
        if tag in ("script", "link", "iframe"):
            self.external.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


def _png_size(data: bytes):
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_speedups_are_ratios_within_one_result():
    ups = speedups(synthetic_result())
    r = synthetic_result()
    fp32 = r["precisions"][0]["latency"][0]
    int8 = r["precisions"][2]["latency"][0]
    assert ups["fp32"] == {"p50": 1.0, "mean": 1.0}
    assert ups["int8"]["p50"] == pytest.approx(fp32["p50_ms"] / int8["p50_ms"])
    assert ups["int8"]["p50"] > 2.5  # 20 ms vs 6 ms base in the synthetic result
    assert speedups(r, batch=8)["fp16"]["mean"] == pytest.approx(
        r["precisions"][0]["latency"][1]["mean_ms"] / r["precisions"][1]["latency"][1]["mean_ms"]
    )
    assert speedups(r, batch=4) == {"fp32": None, "fp16": None, "int8": None}


def test_markdown_has_the_side_by_side_table_and_deltas():
    md = render_markdown(synthetic_result())
    assert "| precision | executor | p50 ms |" in md
    for precision in ("| fp32 |", "| fp16 |", "| int8 |"):
        assert precision in md
    assert "1.00x" in md and "UNTRAINED" in md
    assert "## Accuracy (Δ vs reference)" in md and " pt |" in md
    assert "### Per-class recall" in md and "| (samples) |" in md
    assert "## Batch sizes" in md and "## Power" in md and "VDD_IN mW" in md
    assert "true (rows) vs predicted" in md
    assert "L4T 36.4.3" in md and "MAXN_SUPER (2)" in md and "clocks locked: yes" in md
    assert "int8 batch 16" in md


def test_validation_tiers_and_fp32_noise_floor_reach_the_report():
    result = synthetic_result()
    assert "## Validation tiers" not in render_markdown(result)  # a bundle without a hard tier
    result["data"]["tiers"] = {"hard": {"source": "validation_hard.npz", "samples": 100}}
    for entry in result["precisions"]:
        entry["accuracy_tiers"] = {"hard": copy.deepcopy(entry["accuracy"])}
        entry["accuracy_tiers"]["hard"]["samples"] = 100
    result["noise_stability"] = {"gray_levels": 0.5, "precision": "fp32",
                                 "tiers": {"standard": 1.0, "hard": 0.96}}  # fmt: skip
    md = render_markdown(result)
    assert "## Validation tiers (agreement with FP32; FP32's own under noise)" in md
    assert "| int8 | hard | 100 |" in md and "| int8 | standard | 60 |" in md
    assert "| FP32 + 0.5 gray levels noise | hard |  | 96.0% |" in md
    assert "Validation tiers" in render_html(result, plots=[])


def test_markdown_without_labels_shows_agreement_confusion():
    md = render_markdown(synthetic_result(labelled=False))
    assert "## Accuracy" not in md
    assert "fp32 prediction (rows) vs int8 prediction" in md


def test_html_is_self_contained_and_its_plots_are_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    written = write_reports(synthetic_result(), tmp_path)
    assert sorted(written) == ["html", "json", "md"]
    page = _Page()
    page.feed(written["html"].read_text(encoding="utf-8"))
    assert page.external == []  # no scripts, stylesheets or remote images
    assert "style" in page.tags and "table" in page.tags
    alts = [img["alt"] for img in page.images]
    assert alts == [
        "Latency distribution per precision",
        "Accuracy per precision",
        "Confusion matrices",
    ]
    for img in page.images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        data = base64.b64decode(img["src"][len(prefix) :], validate=True)
        width, height = _png_size(data)
        assert width > 300 and height > 150
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            im.load()  # fully decodes
            assert im.size == (width, height)
            extrema = im.convert("L").getextrema()
            assert extrema[0] < extrema[1]  # not a blank image
    text = " ".join(page.text)
    assert "Precisions side by side" in text and "MAXN_SUPER" in text


def test_json_roundtrip_and_rerender(tmp_path):
    result = synthetic_result()
    path = write_json(result, tmp_path / "jetson.json")
    assert load_result(path) == json.loads(json.dumps(result))
    out = write_reports(load_result(path), tmp_path / "re", formats=["md"], stem="jetson")
    assert out["md"].name == "jetson.md" and "| int8 |" in out["md"].read_text()


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "result file not found"),
        ("{not json", "not a readable JSON result"),
        ('{"kind": "other"}', "not an edge-bench result"),
        ('{"kind": "mer-edge-bench", "schema_version": 99}', "schema_version 99"),
        ('{"kind": "mer-edge-bench", "schema_version": 1, "precisions": []}', "no precisions"),
    ],
)
def test_load_result_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(EdgeBuildError, match=message) as info:
        load_result(path)
    assert str(path) in str(info.value)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(EdgeBuildError, match="unknown report format"):
        write_reports(synthetic_result(), tmp_path, formats=["pdf"])


def test_missing_reference_gives_no_speedups():
    result = copy.deepcopy(synthetic_result())
    result["reference_precision"] = None
    assert speedups(result) == {"fp32": None, "fp16": None, "int8": None}
    assert "–" in render_markdown(result)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_headless_chromium_renders_the_page(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    html_path = write_reports(synthetic_result(), tmp_path, formats=["html"])["html"]
    png = tmp_path / "page.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,2400",
            f"--screenshot={png}",
            html_path.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    with Image.open(png) as shot:
        assert shot.size == (1200, 2400)
        gray = np.asarray(shot.convert("L"))
    # Text and plots make a page far from blank: many dark pixels, spread down the page.
    dark_rows = np.nonzero((gray < 128).any(axis=1))[0]
    assert (gray < 128).mean() > 0.01 and dark_rows.max() > 1200


def test_html_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    import benchmarks.report as report
    from edge.errors import MissingDependencyError

    monkeypatch.setattr(report, "html_available", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"mer-edge\[report\]") as info:
        write_reports(synthetic_result(), tmp_path, formats=["json", "html"])
    assert "bench.html" in str(info.value)


def test_runner_stages_and_gpu_time_reach_the_report(tmp_path):
    """A TensorRT run's h2d/compute/d2h (CUDA events) and GPU time land in the stage table."""
    from benchmarks.latency import measure_latency
    from edge.runtime.trt import TrtRunner
    from tests.trt.conftest import ORIN
    from tests.trt.fake_cuda import FakeCudart
    from tests.trt.test_runner import SHAPES, built_bundle, fake_engine

    root = built_bundle(tmp_path, "10.3")
    feeds = {n: np.ones(SHAPES[n], np.float32) for n in ("onset", "apex")}
    with TrtRunner(root, trt_module=fake_engine("10.3"), cudart=FakeCudart(), device=ORIN) as r:
        measured = measure_latency(r, feeds, iterations=3, warmup_iterations=1).to_dict()
    assert set(measured["stages"]) == {"h2d", "compute", "d2h"}
    assert measured["gpu_ms"]["mean_ms"] == pytest.approx(0.25)
    assert measured["executor"].startswith("TensorRT 10.3")
    result = synthetic_result()
    result["precisions"][0]["latency"][0].update(
        stages=measured["stages"], gpu_ms=measured["gpu_ms"]
    )
    text = render_markdown(result)
    assert "| h2d ms | compute ms | d2h ms |" in text.replace("preprocess ms | ", "")
    assert "GPU (CUDA events) ms" in text
