"""Frames from a video file, a camera or a stream, with timestamps that survive variable
frame rates, and reconnection when a live source drops out.

OpenCV reports each frame's container timestamp; variable-frame-rate files and cameras make the
frame index a poor clock, so times come from the container when they increase and from the
nominal rate otherwise. Frames that fail to decode are skipped and counted, up to a limit of
consecutive failures that marks the end of a damaged stream.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Union

import numpy as np

from edge._lazy import require
from edge.errors import EdgeBuildError
from edge.pipeline.uri import SourceSpec, parse_source, rtsp_pipeline

__all__ = ["Frame", "FrameClock", "VideoSource"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the stream, time in seconds, and BGR pixels."""

    index: int
    time_s: float
    bgr: np.ndarray


class FrameClock:
    """Turns reported timestamps (ms, possibly 0, missing or repeated) into increasing seconds."""

    def __init__(self, fps: float) -> None:
        self.fps = fps if fps and np.isfinite(fps) and fps > 0 else 30.0
        self._last: Optional[float] = None

    def time(self, reported_ms: Optional[float]) -> float:
        step = 1.0 / self.fps
        reported = None
        if reported_ms is not None and np.isfinite(reported_ms) and reported_ms >= 0:
            reported = reported_ms / 1000.0
        if self._last is None:
            now = reported if reported is not None else 0.0
        elif reported is not None and reported > self._last:
            now = reported
        else:
            now = self._last + step
        self._last = now
        return now


def _has_backend(cv2, backend: int) -> bool:
    registry = getattr(cv2, "videoio_registry", None)
    if registry is not None and hasattr(registry, "hasBackend"):
        return bool(registry.hasBackend(backend))
    name = {cv2.CAP_GSTREAMER: "GStreamer", cv2.CAP_FFMPEG: "FFMPEG"}[backend]
    return any(
        line.strip().startswith(name + ":") and "YES" in line
        for line in cv2.getBuildInformation().splitlines()
    )


def _cameras_present() -> List[str]:
    return sorted(str(p) for p in Path("/dev").glob("video[0-9]*"))


class VideoSource:
    """`with VideoSource(source) as s: for frame in s: ...` for any source `parse_source` names.

    Live sources (cameras, CSI, RTSP, pipelines) that stop delivering frames are reopened up to
    `max_reconnects` times, waiting `reconnect_delay_s` x attempt before each; then iteration
    stops with an `EdgeBuildError` that says so. Files end at their last frame, any source
    after `max_frames`.
    """

    def __init__(
        self,
        source: Union[str, Path, int, SourceSpec],
        *,
        max_consecutive_failures: int = 10,
        max_reconnects: int = 5,
        reconnect_delay_s: float = 1.0,
        timeout_s: float = 5.0,
        max_frames: Optional[int] = None,
    ) -> None:
        self.spec = source if isinstance(source, SourceSpec) else parse_source(source)
        self.source = self.spec.target
        self.is_camera = self.spec.live
        self.max_consecutive_failures = max_consecutive_failures
        self.max_reconnects = max_reconnects
        self.reconnect_delay_s = reconnect_delay_s
        self.timeout_s = timeout_s
        self.max_frames = max_frames
        self.corrupt_frames = 0
        self.frames_read = 0
        self.reconnects = 0
        self._capture = None
        self._shape = None
        self._fps: Optional[float] = None

    def _open(self):
        """A `cv2.VideoCapture` for the spec (maybe not opened); clear errors for what cannot be."""
        cv2 = require("cv2", purpose="decoding video")
        spec = self.spec
        if spec.kind == "file":
            path = Path(spec.target)
            if not path.is_file():
                raise EdgeBuildError(f"{path}: video not found")
            return cv2.VideoCapture(str(path))
        if spec.kind == "camera":
            return cv2.VideoCapture(int(spec.target))
        if spec.kind == "rtsp" and _has_backend(cv2, cv2.CAP_FFMPEG):
            ms = int(self.timeout_s * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            return cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG, params)
        if not _has_backend(cv2, cv2.CAP_GSTREAMER):
            raise EdgeBuildError(
                f"{spec.name}: this OpenCV {cv2.__version__} is built without GStreamer, which "
                f"{spec.kind} sources need; on a Jetson use JetPack's OpenCV (apt python3-opencv, "
                "not the PyPI wheel)"
            )
        target = rtsp_pipeline(str(spec.target)) if spec.kind == "rtsp" else str(spec.target)
        return cv2.VideoCapture(target, cv2.CAP_GSTREAMER)

    def _cannot_open(self) -> EdgeBuildError:
        if self.spec.kind == "camera":
            device = f"/dev/video{self.spec.target}"
            if Path("/dev").is_dir() and not Path(device).exists():
                present = _cameras_present()
                here = ", ".join(present) if present else "none"
                return EdgeBuildError(
                    f"{self.spec.name}: no such camera (video devices here: {here})"
                )
            return EdgeBuildError(
                f"{self.spec.name}: OpenCV cannot open this camera (in use by another program, "
                "no permission, or not a capture device)"
            )
        return EdgeBuildError(f"{self.spec.name}: OpenCV cannot open this video source")

    def __enter__(self) -> VideoSource:
        capture = self._open()
        if not capture.isOpened():
            capture.release()
            raise self._cannot_open()
        self._capture = capture
        return self

    def __exit__(self, *exc: object) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def fps(self) -> float:
        if self._fps is None:
            cv2 = require("cv2", purpose="decoding video")
            value = float(self._capture.get(cv2.CAP_PROP_FPS)) if self._capture else 0.0
            if not self._capture:
                return 30.0
            # RTSP and some cameras report 0 or absurd rates (90000: the RTP clock)
            self._fps = value if np.isfinite(value) and 0 < value <= 240 else 30.0
        return self._fps

    @property
    def frame_count(self) -> Optional[int]:
        """Frames the container declares (files only; may be approximate)."""
        cv2 = require("cv2", purpose="decoding video")
        if self.is_camera or self._capture is None:
            return None
        value = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return value if value > 0 else None

    def _valid(self, image: Optional[np.ndarray]) -> bool:
        if image is None or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
            return False
        if self._shape is None:
            self._shape = image.shape
        return image.shape == self._shape

    def _reconnect(self) -> None:
        """Reopen a live source that stopped delivering; raise once every attempt failed."""
        started = time.monotonic()
        for attempt in range(1, self.max_reconnects + 1):
            if self._capture is not None:
                self._capture.release()
                self._capture = None
            delay = self.reconnect_delay_s * attempt
            logger.warning(
                "%s: no frames; reconnecting in %.1f s (attempt %d of %d)",
                self.name, delay, attempt, self.max_reconnects,
            )  # fmt: skip
            time.sleep(delay)
            capture = self._open()
            if capture.isOpened():
                self._capture = capture
                self._shape = None
                self.reconnects += 1
                return
            capture.release()
        raise EdgeBuildError(
            f"{self.name}: the stream dropped out and {self.max_reconnects} reconnect attempts "
            f"over {time.monotonic() - started:.0f} s failed"
        )

    def __iter__(self) -> Iterator[Frame]:
        cv2 = require("cv2", purpose="decoding video")
        if self._capture is None:
            raise EdgeBuildError(f"{self.name}: use the video source inside a `with` block")
        clock = FrameClock(self.fps)
        declared = self.frame_count
        start = time.monotonic()
        index = -1
        failures = 0
        while self.max_frames is None or self.frames_read < self.max_frames:
            ok, image = self._capture.read()
            index += 1
            if ok and self._valid(image):
                failures = 0
                self.frames_read += 1
                if self.is_camera:
                    reported: Optional[float] = (time.monotonic() - start) * 1000.0
                else:
                    reported = float(self._capture.get(cv2.CAP_PROP_POS_MSEC))
                yield Frame(index, clock.time(reported), image)
                continue
            # A failed read past the declared length is the end of the stream; before it (or
            # on a camera) it is a damaged frame, skipped until too many fail in a row.
            if not self.is_camera and (declared is None or index >= declared):
                return
            failures += 1
            self.corrupt_frames += 1
            clock.time(None)
            logger.warning("%s: frame %d could not be decoded; skipped", self.name, index)
            # a live source that fails a few reads in a row (each may have waited `timeout_s`)
            # has dropped out; reconnecting sooner loses less
            if self.is_camera and failures >= min(3, self.max_consecutive_failures):
                self._reconnect()
                failures = 0
                continue
            if failures >= self.max_consecutive_failures:
                logger.warning(
                    "%s: %d consecutive frames failed; treating it as the end of the stream",
                    self.name,
                    failures,
                )
                return
