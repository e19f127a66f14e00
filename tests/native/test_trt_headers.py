"""The TensorRT header check: CMake compiles every source that includes TensorRT headers against
each release in shared/trt-headers (compile only), so an API one release lacks fails the build.

Here: the check's source list is complete, its release list matches the header folders, and the
compile it runs does tell the releases apart (an API removed in 10.0 compiles against 8.5 and
fails against 10.x and 11.x)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CMAKE = (ROOT / "CMakeLists.txt").read_text()


def _cmake_list(name: str):
    match = re.search(rf"set\({name}\s+([^)]*)\)", CMAKE)
    assert match, f"{name} not set in CMakeLists.txt"
    return match.group(1).split()


def _headers() -> Path:
    given = os.environ.get("EDGE_TRT_HEADERS")
    path = Path(given) if given else ROOT.parent / "shared" / "trt-headers"
    if not path.is_dir():
        pytest.skip(f"no TensorRT headers at {path} (set EDGE_TRT_HEADERS)")
    return path


def test_every_source_including_tensorrt_headers_is_checked():
    listed = {s.replace("${EDGE_NATIVE}", "edge/native") for s in _cmake_list("EDGE_TRT_SOURCES")}
    including = set()
    for path in ROOT.glob("edge/**/*"):
        if path.suffix not in (".c", ".cc", ".cpp", ".cu", ".h", ".hpp", ".cuh"):
            continue
        if re.search(r'#include\s*[<"]Nv(Infer|Onnx)\w*\.h[>"]', path.read_text()):
            including.add(str(path.relative_to(ROOT)))
    assert including, "expected edge_trt_run to include NvInfer.h"
    assert including == listed


def test_release_list_matches_the_header_folders():
    headers = _headers()
    folders = sorted(p.name for p in headers.iterdir() if (p / "NvInfer.h").is_file())
    assert sorted(_cmake_list("EDGE_TRT_RELEASES")) == folders


PROBE = """
#include <NvInfer.h>
int bindings(nvinfer1::ICudaEngine& engine) { return engine.getNbBindings(); }
"""


def _compile(headers: Path, release: str, source: Path) -> subprocess.CompletedProcess:
    cuda = next(
        (p for p in ("/usr/local/cuda/include",) if Path(p, "cuda_runtime.h").is_file()), None
    )
    cmd = ["c++", "-std=c++17", "-fsyntax-only", "-isystem", str(headers / release)]
    if cuda:
        cmd += ["-isystem", cuda]
    return subprocess.run(cmd + [str(source)], capture_output=True, text=True, timeout=120)


def test_a_removed_api_fails_the_compile_of_the_releases_that_lack_it(tmp_path):
    """getNbBindings() went away in TensorRT 10: the same compile the check runs says so."""
    headers = _headers()
    if shutil.which("c++") is None:
        pytest.skip("no C++ compiler")
    source = tmp_path / "probe.cpp"
    source.write_text(PROBE)
    assert _compile(headers, "8.5", source).returncode == 0
    for release in ("10.3.0", "11.1"):
        result = _compile(headers, release, source)
        assert result.returncode != 0
        assert "getNbBindings" in result.stderr
