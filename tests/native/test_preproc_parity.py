"""The native library (CPU build, same per-pixel code as the CUDA kernel) against the runtime's
OpenCV path: cv2.warpAffine (INTER_LINEAR) + edge.preprocess.normalize_frame.

The issue's bar is max |diff| <= 1e-3; the library reproduces OpenCV's arithmetic, so the
measured difference is 0 (float32) and at most one float16 rounding step apart never occurs
either, because both sides round the same float32 value.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from edge.errors import EdgeBuildError
from edge.native.preproc import NativePreprocessor, OpenCVPreprocessor, opencv_interp

cv2 = pytest.importorskip("cv2")

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SCALE = 1.0 / 255.0
TOL = 1e-3


def _frame(rng, height, width, channels, pitch_pad=0):
    """A frame mixing noise (hardest for interpolation) and smooth gradients; optional pitch."""
    noise = rng.integers(0, 256, (height, width + pitch_pad, channels), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0 : width + pitch_pad]
    smooth = ((xx * 3 + yy * 2) % 256).astype(np.uint8)[:, :, None]
    full = np.where((yy // 16 + xx // 16)[:, :, None] % 2 == 0, noise, smooth).astype(np.uint8)
    frame = full[:, :width] if pitch_pad else full
    return frame[:, :, 0] if channels == 1 else frame


def _face_matrix(rng, height, width, size=224):
    """A similarity transform like the aligner's: rotate, scale, shift a face box to the crop."""
    angle = rng.uniform(-0.3, 0.3)
    scale = size / rng.uniform(0.25, 0.6) / max(height, width)
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    return np.array([[c, -s, size / 2 - (c * cx - s * cy)], [s, c, size / 2 - (s * cx + c * cy)]])


@pytest.fixture(scope="module")
def native(cpu_lib):
    with NativePreprocessor("cpu", path=cpu_lib) as pre:
        yield pre


@pytest.mark.parametrize("color_in", ["BGR", "RGB", "GRAY", "BGRA"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("pitch_pad", [0, 13])
def test_matches_opencv(native, color_in, dtype, pitch_pad):
    rng = np.random.default_rng(zlib.crc32(f"{color_in}{pitch_pad}".encode()))
    channels = {"GRAY": 1, "BGRA": 4}.get(color_in, 3)
    frame = _frame(rng, 240, 320, channels, pitch_pad)
    if pitch_pad:
        assert not frame.flags["C_CONTIGUOUS"]  # the library reads the padded rows in place
    matrix = _face_matrix(rng, 240, 320)
    args = (matrix, (224, 224), MEAN, STD, SCALE, color_in)
    got = native.warp_normalize(frame, *args, dtype=dtype)
    want = OpenCVPreprocessor().warp_normalize(frame, *args, dtype=dtype)
    assert got.shape == want.shape == (3, 224, 224) and got.dtype == want.dtype == dtype
    diff = float(np.abs(got.astype(np.float32) - want.astype(np.float32)).max())
    assert diff <= TOL, f"max |diff| {diff}"
    assert diff == 0.0  # measured: bit-exact


@pytest.mark.parametrize("border", ["replicate", "constant"])
@pytest.mark.parametrize("color_out", ["RGB", "BGR"])
def test_borders_and_output_order(native, border, color_out):
    rng = np.random.default_rng(7)
    frame = _frame(rng, 120, 160, 3)
    # the crop reaches past the frame's top-left corner
    matrix = np.array([[1.1, 0.2, 40.0], [-0.2, 1.1, 35.0]])
    args = (matrix, (112, 112), MEAN, STD, SCALE, "BGR", color_out)
    got = native.warp_normalize(frame, *args, border=border)
    want = OpenCVPreprocessor().warp_normalize(frame, *args, border=border)
    assert float(np.abs(got - want).max()) == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_diff_variant_matches_opencv(native, dtype):
    rng = np.random.default_rng(3)
    onset = _frame(rng, 240, 320, 3)
    apex = onset.copy()
    apex[100:140, 120:200] = np.clip(apex[100:140, 120:200].astype(int) + 9, 0, 255)
    matrix = _face_matrix(rng, 240, 320)
    args = (matrix, (224, 224), MEAN, STD, SCALE, "BGR")
    got = native.warp_normalize_diff(onset, apex, *args, dtype=dtype)
    want = OpenCVPreprocessor().warp_normalize_diff(onset, apex, *args, dtype=dtype)
    single = native.warp_normalize(apex, *args) - native.warp_normalize(onset, *args)
    assert float(np.abs(got.astype(np.float32) - want.astype(np.float32)).max()) <= TOL
    assert (
        float(np.abs(got.astype(np.float32) - single.astype(dtype).astype(np.float32)).max()) == 0
    )
    assert np.abs(want).max() > 0.1  # the apex change is in the crop


@pytest.mark.parametrize("strided", ["onset", "apex", "both"])
def test_diff_with_strided_frames_matches_opencv(native, strided):
    """Issue 15: a strided onset (row pitch != width * channels) with a contiguous apex."""
    rng = np.random.default_rng(17)
    padded = _frame(rng, 240, 320, 3, pitch_pad=29)
    contiguous = np.ascontiguousarray(_frame(rng, 240, 320, 3))
    onset = padded if strided in ("onset", "both") else np.ascontiguousarray(padded)
    apex = contiguous if strided == "onset" else _frame(rng, 240, 320, 3, pitch_pad=5)
    assert onset.strides[0] != apex.strides[0] or strided == "both"
    matrix = _face_matrix(rng, 240, 320)
    args = (matrix, (224, 224), MEAN, STD, SCALE, "BGR")
    got = native.warp_normalize_diff(onset, apex, *args)
    want = OpenCVPreprocessor().warp_normalize_diff(onset, apex, *args)
    assert float(np.abs(got - want).max()) == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_batch_matches_opencv_frame_by_frame(native, dtype):
    """onset, apex and a third frame with three different pitches, in one call."""
    rng = np.random.default_rng(23)
    frames = [
        _frame(rng, 240, 320, 3, pitch_pad=13),
        np.ascontiguousarray(_frame(rng, 240, 320, 3)),
        _frame(rng, 240, 320, 3, pitch_pad=64),
    ]
    matrix = _face_matrix(rng, 240, 320)
    args = (matrix, (112, 96), MEAN, STD, SCALE, "BGR", "RGB", dtype)
    got = native.warp_normalize_batch(frames, *args)
    want = OpenCVPreprocessor().warp_normalize_batch(frames, *args)
    assert got.shape == want.shape == (3, 3, 112, 96) and got.dtype == dtype
    assert float(np.abs(got.astype(np.float32) - want.astype(np.float32)).max()) == 0.0


def test_batches_longer_than_one_call(native, monkeypatch):
    from edge.native import preproc

    monkeypatch.setattr(preproc, "MAX_BATCH", 2)
    rng = np.random.default_rng(29)
    frames = [_frame(rng, 60, 80, 1) for _ in range(5)]
    matrix = np.array([[0.9, 0.1, 3.0], [-0.1, 0.9, 5.0]])
    args = (matrix, (32, 32), MEAN, STD, SCALE, "GRAY")
    got = native.warp_normalize_batch(frames, *args)
    want = np.stack([native.warp_normalize(f, *args) for f in frames])
    assert np.array_equal(got, want)
    with pytest.raises(EdgeBuildError, match="differ in shape"):
        native.warp_normalize_batch([frames[0], frames[1][:50]], *args)
    with pytest.raises(EdgeBuildError, match="at least one frame"):
        native.warp_normalize_batch([], *args)


def test_binding_constants_match_the_header():
    from pathlib import Path

    from edge.native import preproc

    header = (Path(preproc.__file__).parent / "include" / "edge_preproc.h").read_text()
    assert f"#define EDGE_PREPROC_ABI_VERSION {preproc.ABI_VERSION}\n" in header
    assert f"#define EDGE_PP_MAX_BATCH {preproc.MAX_BATCH}\n" in header


def _opencv_410_warp(frame, matrix, size, border):
    """OpenCV <= 4.10's warpAffine (imgwarp.cpp, INTER_LINEAR, 8U) in numpy: 1/32-pixel fixed
    point. Checked bit-exact against opencv-python-headless 4.10.0.84 while writing this."""
    inv = cv2.invertAffineTransform(matrix)
    height, width = size
    h, w = frame.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    adelta = np.rint(inv[0, 0] * x * 1024).astype(np.int64)
    bdelta = np.rint(inv[1, 0] * x * 1024).astype(np.int64)
    x0 = np.rint((inv[0, 1] * y + inv[0, 2]) * 1024).astype(np.int64) + 16
    y0 = np.rint((inv[1, 1] * y + inv[1, 2]) * 1024).astype(np.int64) + 16
    fx, fy = (x0 + adelta) >> 5, (y0 + bdelta) >> 5
    sx, sy, ax, ay = fx >> 5, fy >> 5, (fx & 31)[..., None], (fy & 31)[..., None]

    def at(yy, xx):
        v = frame[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)].astype(np.int64)
        if border == "constant":
            inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            v = np.where(inside[..., None], v, 0)
        return v

    total = (
        at(sy, sx) * (32 - ax) * (32 - ay)
        + at(sy, sx + 1) * ax * (32 - ay)
        + at(sy + 1, sx) * (32 - ax) * ay
        + at(sy + 1, sx + 1) * ax * ay
    )
    return ((total + 512) >> 10).astype(np.uint8)


@pytest.mark.parametrize("border", ["replicate", "constant"])
def test_fixed_mode_matches_opencv_410(cpu_lib, border):
    """JetPack ships OpenCV 4.5/4.8, whose warp is the fixed-point one."""
    rng = np.random.default_rng(11)
    frame = _frame(rng, 200, 260, 3)
    matrix = _face_matrix(rng, 200, 260, size=96)
    with NativePreprocessor("cpu", path=cpu_lib, interp="fixed") as fixed:
        got = fixed.warp_normalize(
            frame, matrix, (96, 96), MEAN, STD, SCALE, "RGB", "RGB", border=border
        )
    warped = _opencv_410_warp(frame, matrix, (96, 96), border)
    mean = np.asarray(MEAN, np.float32) / np.float32(SCALE)
    inv_std = np.float32(SCALE) / np.asarray(STD, np.float32)
    want = (warped.transpose(2, 0, 1).astype(np.float32) - mean[:, None, None]) * inv_std[
        :, None, None
    ]
    assert float(np.abs(got - want).max()) == 0.0


def test_interp_follows_the_opencv_version():
    assert opencv_interp("4.5.4") == "fixed"
    assert opencv_interp("4.10.0") == "fixed"
    assert opencv_interp("4.11.0") == "float"
    assert opencv_interp("5.0.0") == "float"
    with pytest.raises(EdgeBuildError, match="cannot read the OpenCV version"):
        opencv_interp("unknown")


def test_errors_name_the_library_and_the_problem(native, cpu_lib):
    frame = np.zeros((10, 10, 3), np.uint8)
    args = ((10, 10), MEAN, STD, SCALE, "RGB")
    with pytest.raises(
        EdgeBuildError, match=r"libedge_preproc_cpu\.so: warp_normalize: matrix not invertible"
    ):
        native.warp_normalize(frame, np.array([[1.0, 2, 0], [2, 4, 0]]), *args)
    with pytest.raises(EdgeBuildError, match="std\\[0\\] = 0 must be finite and non-zero"):
        native.warp_normalize(frame, np.eye(2, 3), (10, 10), MEAN, (0, 1, 1), SCALE, "RGB")
    with pytest.raises(EdgeBuildError, match="a BGR frame must be HxWx3"):
        native.warp_normalize(np.zeros((10, 10), np.uint8), np.eye(2, 3), *args[:-1], "BGR")
    with pytest.raises(EdgeBuildError, match="uint8"):
        native.warp_normalize(frame.astype(np.float32), np.eye(2, 3), *args)
    with pytest.raises(EdgeBuildError, match="output colour order"):
        native.warp_normalize(frame, np.eye(2, 3), *args, color_out="GRAY")
    with pytest.raises(EdgeBuildError, match="float32 or float16"):
        native.warp_normalize(frame, np.eye(2, 3), *args, dtype=np.float64)
    with pytest.raises(EdgeBuildError, match="is the cpu build, not the cuda one"):
        NativePreprocessor("cuda", path=cpu_lib)
