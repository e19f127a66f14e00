"""Video sources named the way Jetson users name them (jetson-inference's `videoSource` URIs).

| given | opens |
|---|---|
| `clip.mp4`, `file://clip.mp4` | the file (FFmpeg) |
| `0`, `/dev/video0`, `v4l2:///dev/video0` | a V4L2 camera (USB webcam) |
| `csi://0` | a MIPI CSI camera through GStreamer's `nvarguscamerasrc` (Jetson) |
| `rtsp://host/path`, `rtsps://...` | an IP camera: FFmpeg where OpenCV has it, else GStreamer |
| `... ! appsink` (contains `!`) | a raw GStreamer pipeline, used as given |

Pipelines are built as strings here and handed to `cv2.VideoCapture(..., CAP_GSTREAMER)`;
JetPack's OpenCV has GStreamer, the PyPI wheels do not, which is then a clear error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from edge.errors import EdgeBuildError

__all__ = ["SourceSpec", "parse_source", "csi_pipeline", "rtsp_pipeline"]

KINDS = ("file", "camera", "csi", "rtsp", "gstreamer")
_DEVICE = re.compile(r"^(?:v4l2://)?/dev/video(\d+)$")
_CSI = re.compile(r"^csi://(\d+)$")
_UNSUPPORTED = ("rtp://", "rtmp://", "webrtc://", "display://", "udp://")


@dataclass(frozen=True)
class SourceSpec:
    """What `parse_source` understood: the kind, what to open, and a name for messages.

    `target` is a path (file), a V4L2 index (camera), a URL (rtsp) or a pipeline string
    (csi, gstreamer). Live sources reconnect when they drop out; files end.
    """

    kind: str
    target: Union[str, int]
    name: str

    @property
    def live(self) -> bool:
        return self.kind != "file"


def csi_pipeline(
    sensor_id: int,
    *,
    width: int = 1280,
    height: int = 720,
    fps: int = 30,
    flip: int = 0,
) -> str:
    """nvarguscamerasrc -> NVMM NV12 -> nvvidconv -> BGRx -> videoconvert -> BGR appsink.

    The argus camera delivers NV12 in GPU memory; `nvvidconv` copies it out (and flips it:
    `flip-method` 0-7), `videoconvert` drops the alpha channel OpenCV does not take. The sink
    keeps only the newest frame, so a slow consumer sees fresh frames rather than a backlog.
    """
    for name, value in (("width", width), ("height", height), ("fps", fps)):
        if value <= 0:
            raise EdgeBuildError(f"csi://{sensor_id}: {name} must be > 0, got {value}")
    if not 0 <= flip <= 7:
        raise EdgeBuildError(f"csi://{sensor_id}: flip-method is 0-7, got {flip}")
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width=(int){width}, height=(int){height}, "
        f"format=(string)NV12, framerate=(fraction){fps}/1 ! "
        f"nvvidconv flip-method={flip} ! video/x-raw, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! "
        "appsink drop=true max-buffers=1 sync=false"
    )


def rtsp_pipeline(url: str, *, latency_ms: int = 200) -> str:
    """rtspsrc -> decodebin -> BGR appsink, for OpenCV builds without FFmpeg.

    `decodebin` picks the highest-ranked decoder present, which on a Jetson is the hardware
    `nvv4l2decoder`, elsewhere a software one; `latency` is the jitter buffer.
    """
    return (
        f"rtspsrc location={url} latency={int(latency_ms)} ! decodebin ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! "
        "appsink drop=true max-buffers=1 sync=false"
    )


def parse_source(
    text: Union[str, Path, int],
    *,
    csi_size: Optional[tuple] = None,
    csi_fps: int = 30,
) -> SourceSpec:
    """A source argument as a `SourceSpec`; unknown schemes and bad indices are clear errors."""
    if isinstance(text, int):
        return _camera(text)
    raw = str(text).strip()
    if not raw:
        raise EdgeBuildError("empty video source")
    if "!" in raw and not Path(raw).is_file():
        if "appsink" not in raw:
            raise EdgeBuildError(
                f"GStreamer pipeline {raw!r}: it must end in an appsink for OpenCV to read it"
            )
        return SourceSpec("gstreamer", raw, "gstreamer pipeline")
    if raw.isdigit():
        return _camera(int(raw))
    match = _DEVICE.match(raw)
    if match:
        return _camera(int(match.group(1)))
    match = _CSI.match(raw)
    if match:
        sensor = int(match.group(1))
        width, height = csi_size or (1280, 720)
        return SourceSpec("csi", csi_pipeline(sensor, width=width, height=height, fps=csi_fps), raw)
    lower = raw.lower()
    if lower.startswith(("rtsp://", "rtsps://")):
        return SourceSpec("rtsp", raw, _without_password(raw))
    if lower.startswith(_UNSUPPORTED) or lower.startswith("csi://"):
        raise EdgeBuildError(
            f"{raw}: not a source edge-run opens; give a file, a camera index or /dev/videoN, "
            "csi://N, rtsp://..., or a GStreamer pipeline ending in appsink"
        )
    if lower.startswith("file://"):
        raw = raw[len("file://") :]
    return SourceSpec("file", raw, raw)


def _camera(index: int) -> SourceSpec:
    if index < 0:
        raise EdgeBuildError(f"camera index must be >= 0, got {index}")
    return SourceSpec("camera", index, f"camera {index} (/dev/video{index})")


def _without_password(url: str) -> str:
    """rtsp://user:secret@host/... -> rtsp://user:***@host/... for logs and events."""
    return re.sub(r"^(rtsps?://[^:/@]+):[^@/]*@", r"\1:***@", url)
