"""CUDA kernel tests: run on a machine with a GPU (the lent GPU machine or a Jetson).

The CUDA library comes from $MER_EDGE_NATIVE_LIB (a directory with libedge_preproc.so) or is
built here with CMake for the local GPU. It must equal the CPU build bit for bit (same
per-pixel code) and OpenCV within 1e-3, through both host- and device-pointer calls.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.native.preproc import NativePreprocessor, OpenCVPreprocessor
from tests.native.conftest import CUDA_LIB, cmake_build

pytestmark = pytest.mark.gpu

MEAN, STD, SCALE = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1.0 / 255.0


@pytest.fixture(scope="module")
def cuda_pre(tmp_path_factory):
    given = os.environ.get("MER_EDGE_NATIVE_LIB")
    if given and (Path(given) / CUDA_LIB).is_file():
        lib = Path(given) / CUDA_LIB
    elif shutil.which("nvcc") and shutil.which("cmake"):
        build = cmake_build(
            tmp_path_factory.mktemp("cuda-build"),
            cuda=True,
            extra=["-DCMAKE_CUDA_ARCHITECTURES=native", "-DEDGE_BUILD_TESTS=OFF"],
        )
        lib = build / CUDA_LIB
    else:
        pytest.skip("no CUDA library and no nvcc to build one")
    try:
        pre = NativePreprocessor("cuda", path=lib)
    except Exception as exc:  # no device: skip with the library's own reason
        pytest.skip(f"CUDA library unusable here: {exc}")
    with pre:
        yield pre


@pytest.fixture(scope="module")
def cpu_pre(cpu_lib):
    with NativePreprocessor("cpu", path=cpu_lib) as pre:
        yield pre


@pytest.mark.parametrize("color_in", ["BGR", "RGB", "GRAY", "BGRA"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_kernel_equals_cpu_build_and_opencv(cuda_pre, cpu_pre, color_in, dtype):
    rng = np.random.default_rng(5)
    channels = {"GRAY": 1, "BGRA": 4}.get(color_in, 3)
    padded = rng.integers(0, 256, (1080, 1920 + 32, channels), dtype=np.uint8)
    frame = padded[:, :1920, 0] if channels == 1 else padded[:, :1920]
    matrix = np.array([[0.45, -0.05, -300.0], [0.05, 0.45, -200.0]])
    args = (matrix, (224, 224), MEAN, STD, SCALE, color_in)
    got = cuda_pre.warp_normalize(frame, *args, dtype=dtype)
    assert np.array_equal(got, cpu_pre.warp_normalize(frame, *args, dtype=dtype))
    want = OpenCVPreprocessor().warp_normalize(frame, *args, dtype=dtype)
    assert float(np.abs(got.astype(np.float32) - want.astype(np.float32)).max()) <= 1e-3
    onset, apex = frame, np.ascontiguousarray(frame[::-1])  # strided onset, contiguous apex
    diff = cuda_pre.warp_normalize_diff(onset, apex, *args, dtype=dtype)
    assert np.array_equal(diff, cpu_pre.warp_normalize_diff(onset, apex, *args, dtype=dtype))
    want_diff = OpenCVPreprocessor().warp_normalize_diff(onset, apex, *args, dtype=dtype)
    assert float(np.abs(diff.astype(np.float32) - want_diff.astype(np.float32)).max()) <= 1e-3
    batch = cuda_pre.warp_normalize_batch([onset, apex], *args, dtype=dtype)
    assert np.array_equal(batch, cpu_pre.warp_normalize_batch([onset, apex], *args, dtype=dtype))


def test_repeated_calls_reuse_buffers_and_stay_right(cuda_pre, cpu_pre):
    """Buffers grow and are reused: a small crop after a big batch, then a big one again."""
    rng = np.random.default_rng(13)
    frames = [rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for _ in range(4)]
    big = np.array([[0.3, 0.0, -100.0], [0.0, 0.3, -50.0]])
    small = np.array([[1.0, 0.0, -600.0], [0.0, 1.0, -300.0]])
    for matrix, size, n in ((big, (224, 224), 4), (small, (48, 64), 1), (big, (224, 224), 2)):
        args = (matrix, size, MEAN, STD, SCALE, "BGR")
        got = cuda_pre.warp_normalize_batch(frames[:n], *args)
        assert np.array_equal(got, cpu_pre.warp_normalize_batch(frames[:n], *args))


def test_device_pointer_diff_with_different_pitches(cuda_pre, cpu_pre):
    """Device pointers: onset with a padded pitch, apex packed; each read with its own pitch."""
    from edge.native.preproc import COLORS, _Image

    lib = cuda_pre._lib
    rng = np.random.default_rng(10)
    h, w, pad = 480, 640, 96
    onset = rng.integers(0, 256, (h, w * 3 + pad), dtype=np.uint8)
    apex = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    matrix = np.array([[0.6, 0.05, -50.0], [-0.05, 0.6, -40.0]])
    params = cuda_pre._params(matrix, (224, 224), MEAN, STD, SCALE, "RGB", np.float32, "replicate")
    ptrs = [ctypes.c_void_p() for _ in range(3)]
    out = np.empty((3, 224, 224), np.float32)
    sizes = (onset.nbytes, apex.nbytes, out.nbytes)
    for ptr, nbytes in zip(ptrs, sizes):
        assert lib.edge_preproc_device_alloc(nbytes, ctypes.byref(ptr)) == 0
    try:
        assert lib.edge_preproc_copy_to_device(ptrs[0], onset.ctypes.data, onset.nbytes) == 0
        assert lib.edge_preproc_copy_to_device(ptrs[1], apex.ctypes.data, apex.nbytes) == 0
        first = _Image(ptrs[0].value, w, h, COLORS["BGR"], 0, w * 3 + pad)
        second = _Image(ptrs[1].value, w, h, COLORS["BGR"], 0, w * 3)
        status = lib.edge_preproc_warp_normalize_diff_device(
            ctypes.byref(first), ctypes.byref(second), ctypes.byref(params), ptrs[2], None
        )
        assert status == 0, lib.edge_preproc_last_error()
        assert lib.edge_preproc_synchronize() == 0
        assert lib.edge_preproc_copy_to_host(out.ctypes.data, ptrs[2], out.nbytes) == 0
    finally:
        for ptr in ptrs:
            lib.edge_preproc_device_free(ptr)
    onset_view = onset[:, : w * 3].reshape(h, w, 3)
    args = (matrix, (224, 224), MEAN, STD, SCALE, "BGR")
    assert np.array_equal(out, cpu_pre.warp_normalize_diff(onset_view, apex, *args))


def test_device_pointer_variant(cuda_pre, cpu_pre):
    from edge.native.preproc import COLORS, _Image

    lib = cuda_pre._lib
    rng = np.random.default_rng(9)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    matrix = np.array([[0.6, 0.0, -50.0], [0.0, 0.6, -40.0]])
    params = cuda_pre._params(matrix, (224, 224), MEAN, STD, SCALE, "RGB", np.float32, "replicate")
    d_frame, d_out = ctypes.c_void_p(), ctypes.c_void_p()
    out = np.empty((3, 224, 224), np.float32)
    assert lib.edge_preproc_device_alloc(frame.nbytes, ctypes.byref(d_frame)) == 0
    assert lib.edge_preproc_device_alloc(out.nbytes, ctypes.byref(d_out)) == 0
    try:
        assert lib.edge_preproc_copy_to_device(d_frame, frame.ctypes.data, frame.nbytes) == 0
        image = _Image(d_frame.value, 640, 480, COLORS["BGR"], 0, 640 * 3)
        status = lib.edge_preproc_warp_normalize_device(
            ctypes.byref(image), ctypes.byref(params), d_out, None
        )
        assert status == 0, lib.edge_preproc_last_error()
        assert lib.edge_preproc_synchronize() == 0
        assert lib.edge_preproc_copy_to_host(out.ctypes.data, d_out, out.nbytes) == 0
    finally:
        lib.edge_preproc_device_free(d_frame)
        lib.edge_preproc_device_free(d_out)
    want = cpu_pre.warp_normalize(frame, matrix, (224, 224), MEAN, STD, SCALE, "BGR")
    assert np.array_equal(out, want)
