"""A small, deterministic test video with micro-expression events planted at known frames.

Real face photographs (`calib.faces`) are placed on a 720p canvas; each event warps the face
like `micro_expression_pair` (mouth corners up and out, brows up) with an amplitude that rises
from the onset frame to the apex and falls back by the offset, as a real micro-expression
does within half a second. Datasets cannot be shipped, so this is what `edge-run` is tested on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from calib.faces import FACE_PHOTOS, micro_expression_pair
from edge._lazy import require
from edge.errors import EdgeBuildError

__all__ = ["PlantedEvent", "TestVideo", "write_test_video", "DEFAULT_EVENTS"]

#: (onset frame, frames from onset to apex) of each planted event at the default 30 fps.
DEFAULT_EVENTS: Tuple[Tuple[int, int], ...] = ((30, 5), (90, 5))


@dataclass(frozen=True)
class PlantedEvent:
    onset: int
    apex: int
    offset: int


@dataclass(frozen=True)
class TestVideo:
    path: Path
    fps: float
    size: Tuple[int, int]
    frames: int
    photo: str
    face_box: Tuple[int, int, int, int]
    events: Tuple[PlantedEvent, ...]


FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


def _amplitude(frame: int, event: PlantedEvent) -> float:
    """0 at onset, 1 at apex, 0 again at offset (smooth raised cosine)."""
    if frame <= event.onset or frame >= event.offset:
        return 0.0
    if frame <= event.apex:
        t = (frame - event.onset) / float(event.apex - event.onset)
    else:
        t = (event.offset - frame) / float(event.offset - event.apex)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def write_test_video(
    path: Union[str, Path],
    *,
    photo: str = "astronaut",
    size: Tuple[int, int] = (1280, 720),
    fps: float = 30.0,
    seconds: float = 4.0,
    face_px: int = 240,
    events: Sequence[Tuple[int, int]] = DEFAULT_EVENTS,
    amplitude_px: float = 2.0,
    noise: float = 1.0,
    seed: int = 0,
    hidden: Sequence[Tuple[int, int]] = (),
) -> TestVideo:
    """Write the video (`.mp4` as mp4v, `.avi` as MJPG) and return where its events are.

    Args:
        size: (width, height) of the frames.
        face_px: side of the face box in the video, in pixels.
        events: (onset frame, onset-to-apex frames); the offset mirrors the rise.
        amplitude_px: peak displacement of mouth corners and brows at `face_px`.
        noise: standard deviation of the sensor noise added to every frame (grey levels).
        hidden: [start, end) frame ranges that show the background only (no face).
    """
    cv2 = require("cv2", purpose="writing the test video")
    path = Path(path)
    if photo not in FACE_PHOTOS:
        raise EdgeBuildError(f"unknown photo {photo!r}; available: {', '.join(FACE_PHOTOS)}")
    fourcc = FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise EdgeBuildError(f"{path}: use .mp4, .mkv or .avi for the test video")
    width, height = size
    total = int(round(seconds * fps))
    planted = tuple(PlantedEvent(o, o + rise, o + 2 * rise) for o, rise in events)
    for event in planted:
        if event.onset < 1 or event.offset >= total or event.apex <= event.onset:
            raise EdgeBuildError(f"event {event} does not fit in {total} frames")

    entry = FACE_PHOTOS[photo]
    image = entry.load()
    top, bottom, left, right = entry.box
    scale = face_px / float(bottom - top)
    scaled = cv2.resize(
        image,
        None,
        fx=scale,
        fy=scale,
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
    )
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    canvas[..., 0] = (60 + 40 * xx / width).astype(np.uint8)
    canvas[..., 1] = (70 + 30 * yy / height).astype(np.uint8)
    canvas[..., 2] = 90
    background = canvas.copy()
    ph, pw = min(scaled.shape[0], height), min(scaled.shape[1], width)
    oy, ox = (height - ph) // 2, (width - pw) // 2
    canvas[oy : oy + ph, ox : ox + pw] = scaled[:ph, :pw]
    fy0 = oy + int(round(top * scale))
    fx0 = ox + int(round(left * scale))
    face_box = (fx0, fy0, fx0 + face_px, fy0 + face_px)

    levels: Dict[int, np.ndarray] = {}

    def face_at(amplitude: float) -> np.ndarray:
        key = int(round(amplitude * 20))
        if key not in levels:
            _, apex = micro_expression_pair(
                photo, size=face_px, amplitude_px=amplitude_px * key / 20
            )
            levels[key] = apex
        return levels[key]

    rng = np.random.default_rng(seed)
    noises: List[np.ndarray] = [
        rng.normal(0.0, noise, size=(height, width, 3)).astype(np.float32) for _ in range(4)
    ]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise EdgeBuildError(f"{path}: OpenCV cannot write {fourcc} video here")
    try:
        for index in range(total):
            amplitude = max((_amplitude(index, e) for e in planted), default=0.0)
            if any(start <= index < end for start, end in hidden):
                frame = background.copy()
            else:
                frame = canvas.copy()
                frame[fy0 : fy0 + face_px, fx0 : fx0 + face_px] = face_at(amplitude)
            if noise > 0:
                noisy = frame.astype(np.float32) + noises[index % len(noises)]
                frame = np.clip(noisy, 0, 255).astype(np.uint8)
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        writer.release()
    return TestVideo(path, float(fps), (width, height), total, photo, face_box, planted)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m calib.video OUT.mp4`: write the default 720p 30 fps test video."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m calib.video", description=main.__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    video = write_test_video(args.out, seconds=args.seconds)
    for event in video.events:
        print(f"event onset={event.onset} apex={event.apex} offset={event.offset}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
