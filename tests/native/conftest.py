"""Builds the native libraries once per session with CMake (CPU parts only: seconds), or uses
the ones named by $MER_EDGE_NATIVE_LIB when that is a directory holding them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CPU_LIB = "libedge_preproc_cpu.so"
CUDA_LIB = "libedge_preproc.so"


def _cxx() -> bool:
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "c++", "g++", "clang++") if c)


def cmake_build(build: Path, *, cuda: bool, extra=()) -> Path:
    """Configure and build the project into `build`; returns the build directory."""
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    configure = [
        "cmake",
        "-S",
        str(ROOT),
        "-B",
        str(build),
        *generator,
        "-DEDGE_ENABLE_TRT=OFF",
        "-DEDGE_TRT_HEADER_CHECK=OFF",  # CI's own build runs it; test builds stay quick
        f"-DEDGE_ENABLE_CUDA={'ON' if cuda else 'OFF'}",
        *extra,
    ]
    for cmd in (configure, ["cmake", "--build", str(build), "--parallel", "2"]):
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return build


@pytest.fixture(scope="session")
def native_build(tmp_path_factory) -> Path:
    """Directory holding libedge_preproc_cpu.so (and the ctest executables when built here)."""
    given = os.environ.get("MER_EDGE_NATIVE_LIB")
    if given and (Path(given) / CPU_LIB).is_file():
        return Path(given)
    if shutil.which("cmake") is None or not _cxx():
        pytest.skip("cmake or a C++ compiler is not installed: native code not built")
    return cmake_build(tmp_path_factory.mktemp("native-build"), cuda=False)


@pytest.fixture(scope="session")
def cpu_lib(native_build) -> Path:
    return native_build / CPU_LIB
