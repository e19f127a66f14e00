"""Where results go: JSON lines (one object per event, no-face stretch and run summary) and an
optional annotated copy of the video."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, TextIO, Tuple, Union

import numpy as np

from edge._lazy import require
from edge.errors import EdgeBuildError

__all__ = ["JsonLines", "AnnotatedVideo"]


class JsonLines:
    """Writes one JSON object per line to a file or an open stream (flushed per record)."""

    def __init__(self, target: Union[str, Path, TextIO]) -> None:
        self._own = not hasattr(target, "write")
        if self._own:
            path = Path(target)  # type: ignore[arg-type]
            try:
                # closed by close(): the stream outlives this call by design
                self._stream: TextIO = open(path, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise EdgeBuildError(f"{path}: cannot write events: {exc}") from exc
        else:
            self._stream = target  # type: ignore[assignment]

    def write(self, record: Dict[str, Any]) -> None:
        self._stream.write(json.dumps(record, sort_keys=False) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._own:
            self._stream.close()


class AnnotatedVideo:
    """The input frames with the registered face outlined and the latest event written on them."""

    def __init__(self, path: Union[str, Path], fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._writer = None
        self._label: Optional[Tuple[str, int]] = None  # (text, frames left)

    def show(self, text: str, frames: int) -> None:
        self._label = (text, frames)

    def write(self, bgr: np.ndarray, corners: Optional[np.ndarray]) -> None:
        cv2 = require("cv2", purpose="writing the annotated video")
        if self._writer is None:
            height, width = bgr.shape[:2]
            fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
            self._writer = cv2.VideoWriter(
                str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, (width, height)
            )
            if not self._writer.isOpened():
                raise EdgeBuildError(f"{self.path}: OpenCV cannot write {fourcc} video here")
        frame = bgr.copy()
        if corners is not None:
            cv2.polylines(frame, [np.round(corners).astype(np.int32)], True, (0, 255, 0), 2)
        else:
            cv2.putText(frame, "no face", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 255), 2)
        if self._label is not None:
            text, left = self._label
            cv2.putText(frame, text, (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 255, 255), 2)
            self._label = (text, left - 1) if left > 1 else None
        self._writer.write(frame)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
