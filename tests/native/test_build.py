"""The CMake project configures and builds from a clean directory, and its ctest suite passes."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.native.conftest import CPU_LIB, cmake_build


def test_ctest_passes_in_a_fresh_build(native_build):
    if not (native_build / "CTestTestfile.cmake").is_file():
        pytest.skip("$MER_EDGE_NATIVE_LIB points at a build without tests")
    assert (native_build / CPU_LIB).is_file()
    result = subprocess.run(
        ["ctest", "--output-on-failure"],
        cwd=native_build,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "100% tests passed" in result.stdout
    assert "preproc_host" in result.stdout and "trt_run_core" in result.stdout


@pytest.mark.slow
def test_cuda_library_compiles_where_nvcc_exists(tmp_path):
    """CUDA code compiles here (no GPU needed to compile); one architecture keeps it short."""
    if shutil.which("nvcc") is None or shutil.which("cmake") is None:
        pytest.skip("nvcc or cmake not installed")
    build = cmake_build(
        tmp_path / "b", cuda=True, extra=["-DEDGE_CUDA_ARCHS=87", "-DEDGE_BUILD_TESTS=OFF"]
    )
    assert (build / "libedge_preproc.so").is_file()
    assert (build / CPU_LIB).is_file()
    # Without a GPU (this host) the real CUDA library must fall back cleanly; with one, load.
    from edge.native.preproc import NativePreprocessor, OpenCVPreprocessor, make_preprocessor

    chosen = make_preprocessor("auto", path=build / "libedge_preproc.so")
    if isinstance(chosen, OpenCVPreprocessor):
        with pytest.raises(Exception, match="no CUDA device"):
            make_preprocessor("native", path=build / "libedge_preproc.so")
    else:
        assert isinstance(chosen, NativePreprocessor) and chosen.device_count() > 0
