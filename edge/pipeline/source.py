"""Frames from a video file or a camera, with timestamps that survive variable frame rates.

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
from typing import Iterator, Optional, Union

import numpy as np

from edge._lazy import require
from edge.errors import EdgeBuildError

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


class VideoSource:
    """`with VideoSource(path_or_camera) as source: for frame in source: ...`"""

    def __init__(
        self,
        source: Union[str, Path, int],
        *,
        max_consecutive_failures: int = 10,
    ) -> None:
        self.source = source
        self.is_camera = isinstance(source, int)
        self.max_consecutive_failures = max_consecutive_failures
        self.corrupt_frames = 0
        self.frames_read = 0
        self._capture = None
        self._shape = None

    def __enter__(self) -> VideoSource:
        cv2 = require("cv2", purpose="decoding video")
        if not self.is_camera:
            path = Path(self.source)
            if not path.is_file():
                raise EdgeBuildError(f"{path}: video not found")
            capture = cv2.VideoCapture(str(path))
        else:
            capture = cv2.VideoCapture(int(self.source))
        if not capture.isOpened():
            what = f"camera {self.source}" if self.is_camera else str(self.source)
            raise EdgeBuildError(f"{what}: OpenCV cannot open this video source")
        self._capture = capture
        return self

    def __exit__(self, *exc: object) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    @property
    def name(self) -> str:
        return f"camera {self.source}" if self.is_camera else str(self.source)

    @property
    def fps(self) -> float:
        cv2 = require("cv2", purpose="decoding video")
        value = float(self._capture.get(cv2.CAP_PROP_FPS)) if self._capture else 0.0
        return value if np.isfinite(value) and value > 0 else 30.0

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

    def __iter__(self) -> Iterator[Frame]:
        cv2 = require("cv2", purpose="decoding video")
        if self._capture is None:
            raise EdgeBuildError(f"{self.name}: use the video source inside a `with` block")
        clock = FrameClock(self.fps)
        declared = self.frame_count
        start = time.monotonic()
        index = -1
        failures = 0
        while True:
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
            if failures >= self.max_consecutive_failures:
                logger.warning(
                    "%s: %d consecutive frames failed; treating it as the end of the stream",
                    self.name,
                    failures,
                )
                return
