"""`edge-run --onset/--apex` through the native preprocessing library gives the same event as
the OpenCV path: the fused warp + normalise (CPU build of edge_preproc here; the CUDA build
shares its per-pixel code) replaces warp_face + normalize_frame inside the real pipeline."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from edge.cli.run import main as run_main

pytestmark = [pytest.mark.torch, pytest.mark.ort]


@pytest.fixture(scope="module")
def native_lib_dir(tmp_path_factory) -> Path:
    from tests.native.conftest import CPU_LIB, cmake_build

    given = os.environ.get("MER_EDGE_NATIVE_LIB")
    if given and (Path(given) / CPU_LIB).is_file():
        return Path(given)
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        pytest.skip("cmake or a C++ compiler is not installed: native code not built")
    return cmake_build(tmp_path_factory.mktemp("native"), cuda=False)


def _event(path: Path):
    return [json.loads(x) for x in path.read_text().splitlines() if '"event"' in x][0]


def test_native_cpu_preprocessing_matches_opencv_in_edge_run(
    bundle_dir, video_720p, native_lib_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("MER_EDGE_NATIVE_LIB", str(native_lib_dir))
    base = ["--bundle", str(bundle_dir), str(video_720p.path), "--onset", "30", "--apex", "36"]
    results = {}
    for kind in ("opencv", "native-cpu"):
        out = tmp_path / f"{kind}.jsonl"
        assert run_main(base + ["--preprocess", kind, "--events-out", str(out)]) == 0
        results[kind] = _event(out)
    assert "align+normalize" in results["native-cpu"]["timing_ms"]
    assert "align" in results["opencv"]["timing_ms"]
    assert results["native-cpu"]["label"] == results["opencv"]["label"]
    for name, score in results["opencv"]["scores"].items():
        assert results["native-cpu"]["scores"][name] == pytest.approx(score, abs=1e-5)


@pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None, reason="a GPU is present: auto uses CUDA"
)
def test_auto_without_a_gpu_runs_the_opencv_path(bundle_dir, video_720p, tmp_path):
    out = tmp_path / "auto.jsonl"
    base = ["--bundle", str(bundle_dir), str(video_720p.path), "--onset", "30", "--apex", "36"]
    assert run_main(base + ["--events-out", str(out)]) == 0
    assert "align" in _event(out)["timing_ms"]
