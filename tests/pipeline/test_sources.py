"""Video sources as Jetson users name them: parsing, the GStreamer pipelines built for CSI and
RTSP cameras, clear errors for what cannot open here, and an RTSP stream served on localhost
that drops out (reconnect, bounded, then a clear error)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edge.errors import EdgeBuildError
from edge.pipeline import VideoSource, parse_source
from edge.pipeline.uri import csi_pipeline, rtsp_pipeline

cv2 = pytest.importorskip("cv2")

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"

CSI0 = (
    "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM), width=(int)1280, "
    "height=(int)720, format=(string)NV12, framerate=(fraction)30/1 ! nvvidconv flip-method=0 ! "
    "video/x-raw, format=(string)BGRx ! videoconvert ! video/x-raw, format=(string)BGR ! "
    "appsink drop=true max-buffers=1 sync=false"
)


@pytest.mark.parametrize(
    "given, kind, target, name",
    [
        ("clip.mp4", "file", "clip.mp4", "clip.mp4"),
        ("file:///data/clip.mp4", "file", "/data/clip.mp4", "/data/clip.mp4"),
        ("0", "camera", 0, "camera 0 (/dev/video0)"),
        (2, "camera", 2, "camera 2 (/dev/video2)"),
        ("/dev/video1", "camera", 1, "camera 1 (/dev/video1)"),
        ("v4l2:///dev/video3", "camera", 3, "camera 3 (/dev/video3)"),
        ("csi://0", "csi", CSI0, "csi://0"),
        ("rtsp://cam.local:554/stream1", "rtsp", "rtsp://cam.local:554/stream1", None),
        ("rtsp://admin:hunter2@10.0.0.5/live", "rtsp", None, "rtsp://admin:***@10.0.0.5/live"),
        ("videotestsrc ! videoconvert ! appsink", "gstreamer", None, "gstreamer pipeline"),
    ],
)
def test_sources_parse_like_jetson_inference(given, kind, target, name):
    spec = parse_source(given)
    assert spec.kind == kind and spec.live == (kind != "file")
    if target is not None:
        assert spec.target == target
    if name is not None:
        assert spec.name == name
    if kind == "gstreamer":
        assert spec.target == given


@pytest.mark.parametrize(
    "given, message",
    [
        ("videotestsrc ! autovideosink", "must end in an appsink"),
        ("rtp://0.0.0.0:5000", "not a source edge-run opens"),
        ("webrtc://localhost/x", "not a source edge-run opens"),
        ("csi://front", "not a source edge-run opens"),
        (-1, "camera index must be >= 0"),
        ("  ", "empty video source"),
    ],
)
def test_bad_sources_are_clear_errors(given, message):
    with pytest.raises(EdgeBuildError, match=message):
        parse_source(given)


def test_an_existing_file_is_a_file_whatever_its_name(tmp_path):
    odd = tmp_path / "take 2 ! final.mp4"
    odd.write_bytes(b"")
    assert parse_source(str(odd)).kind == "file"


def test_pipeline_strings():
    assert csi_pipeline(0) == CSI0
    wide = csi_pipeline(1, width=1920, height=1080, fps=60, flip=2)
    assert wide.startswith("nvarguscamerasrc sensor-id=1 ! ")
    assert "width=(int)1920, height=(int)1080" in wide and "framerate=(fraction)60/1" in wide
    assert "nvvidconv flip-method=2 !" in wide and wide.endswith(
        "appsink drop=true max-buffers=1 sync=false"
    )
    assert parse_source("csi://1", csi_size=(1920, 1080), csi_fps=60).target == wide.replace(
        "flip-method=2", "flip-method=0"
    )
    with pytest.raises(EdgeBuildError, match="flip-method is 0-7"):
        csi_pipeline(0, flip=9)
    assert rtsp_pipeline("rtsp://h/s", latency_ms=100) == (
        "rtspsrc location=rtsp://h/s latency=100 ! decodebin ! videoconvert ! "
        "video/x-raw, format=(string)BGR ! appsink drop=true max-buffers=1 sync=false"
    )


def _no_such_camera() -> int:
    index = 7
    while Path(f"/dev/video{index}").exists():
        index += 1
    return index


def test_a_camera_that_cannot_be_opened_is_a_clear_error():
    index = _no_such_camera()
    with pytest.raises(
        EdgeBuildError, match=rf"camera {index} \(/dev/video{index}\): no such camera"
    ):
        VideoSource(index).__enter__()


def test_csi_without_gstreamer_opencv_says_what_to_install():
    if cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        pytest.skip("this OpenCV has GStreamer; the CSI pipeline would be tried for real")
    with pytest.raises(EdgeBuildError, match="built without GStreamer.*JetPack's OpenCV"):
        VideoSource("csi://0").__enter__()


def test_edge_run_source_errors(bundle_dir, capsys):
    from edge.cli.run import main as run_main

    index = _no_such_camera()
    assert run_main(["--bundle", str(bundle_dir), "--camera", str(index)]) == 1
    assert f"camera {index} (/dev/video{index}): no such camera" in capsys.readouterr().err
    assert run_main(["--bundle", str(bundle_dir), f"/dev/video{index}"]) == 1
    with pytest.raises(SystemExit) as exc:
        run_main(["--bundle", str(bundle_dir), "rtp://0.0.0.0:5000"])
    assert exc.value.code == 2 and "not a source edge-run opens" in capsys.readouterr().err


# --- RTSP on localhost ---------------------------------------------------------------------------


def _server_available() -> bool:
    if shutil.which(SYSTEM_PYTHON) is None:
        return False
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import GstRtspServer"
    )
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """gst-rtsp-server in a child process, looping JPEG frames of a drifting face."""

    def __init__(self, frames: Path, port: int) -> None:
        self.frames, self.port = frames, port
        self.url = f"rtsp://127.0.0.1:{port}/face"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(self.port), str(self.frames / "%03d.jpg"), "30"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        line = self.process.stdout.readline().strip()
        if line != "ready":
            self.stop()
            pytest.fail(f"RTSP server did not start: {line!r}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process.stdout.close()
            self.process = None


@pytest.fixture
def rtsp(tmp_path):
    if not _server_available():
        pytest.skip(
            "no RTSP server here: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 "
            "gstreamer1.0-plugins-good"
        )
    pytest.importorskip("skimage")
    from calib.video import compose_frame

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(30):
        rgb, _ = compose_frame((640, 360), [("astronaut", 120, (0.4 + 0.003 * i, 0.45))])
        cv2.imwrite(str(frames / f"{i:03d}.jpg"), np.ascontiguousarray(rgb[:, :, ::-1]))
    server = RtspServer(frames, _free_port())
    server.start()
    yield server
    server.stop()


def test_rtsp_stream_is_read_with_the_face_found(
    rtsp, bundle_dir, tmp_path, capsys, need_face_models
):
    from edge.cli.run import main as run_main

    events = tmp_path / "events.jsonl"
    code = run_main(
        ["--bundle", str(bundle_dir), rtsp.url, "--max-frames", "60", "--events-out", str(events)]
    )
    assert code == 0
    summary = json.loads(events.read_text().splitlines()[-1])
    assert summary["type"] == "summary" and summary["frames"] == 60
    assert summary["source"] == rtsp.url and summary["clips"] >= 1
    assert summary["no_face_frames"] <= 1 and 60 <= summary["face_px"] <= 90


def test_rtsp_dropout_reconnects_then_gives_a_clear_error(rtsp):
    source = VideoSource(rtsp.url, max_reconnects=3, reconnect_delay_s=0.5, timeout_s=1.0)
    with source:
        frames = iter(source)
        for _ in range(10):
            assert next(frames).bgr.shape == (360, 640, 3)
        rtsp.stop()  # the camera drops out ...
        comeback = threading.Timer(1.0, rtsp.start)  # ... and comes back a second later
        comeback.start()
        after = 0
        started = time.monotonic()
        for _ in frames:  # buffered frames first, then a reconnect, then new frames
            after += source.reconnects > 0
            if after >= 10 or time.monotonic() - started > 60:
                break
        comeback.join()
        assert source.reconnects >= 1 and after >= 10
        rtsp.stop()  # gone for good: bounded attempts, then a clear error
        started = time.monotonic()
        with pytest.raises(EdgeBuildError, match="dropped out and 3 reconnect attempts"):
            for _ in frames:
                pass
        assert time.monotonic() - started < 30
