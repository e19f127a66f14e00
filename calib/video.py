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

__all__ = [
    "PlantedEvent",
    "TestVideo",
    "write_test_video",
    "DEFAULT_EVENTS",
    "background",
    "place_face",
    "drift_offset",
    "compose_frame",
]

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
    #: peak drift of the face from `face_box`, in pixels (0: the face stands still)
    drift_px: float = 0.0


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


def drift_offset(time_s: float, drift_px: float, period_s: float) -> Tuple[float, float]:
    """Where a slowly swaying head is at `time_s`: a smooth loop, `drift_px` at most per axis."""
    if drift_px <= 0:
        return 0.0, 0.0
    phase = 2.0 * np.pi * time_s / period_s
    return drift_px * float(np.sin(phase)), 0.5 * drift_px * float(np.sin(0.5 * phase))


def background(width: int, height: int) -> np.ndarray:
    """The smooth colour gradient the faces are placed on (RGB)."""
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    canvas[..., 0] = (60 + 40 * xx / width).astype(np.uint8)
    canvas[..., 1] = (70 + 30 * yy / height).astype(np.uint8)
    canvas[..., 2] = 90
    return canvas


@dataclass(frozen=True)
class _Sprite:
    """A packaged photograph scaled so its face box is `face_px`, and where that box sits."""

    image: np.ndarray
    face_offset: Tuple[int, int]  # face box corner inside `image` (x, y)
    face_px: int


def _sprite(photo: str, face_px: int) -> _Sprite:
    cv2 = require("cv2", purpose="writing the test video")
    entry = FACE_PHOTOS[photo]
    top, bottom, left, right = entry.box
    scale = face_px / float(bottom - top)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    image = cv2.resize(entry.load(), None, fx=scale, fy=scale, interpolation=interp)
    return _Sprite(image, (int(round(left * scale)), int(round(top * scale))), face_px)


def place_face(
    frame: np.ndarray,
    sprite_image: np.ndarray,
    origin: Tuple[float, float],
) -> None:
    """Paint a photograph onto `frame` with its top-left corner at sub-pixel `origin` (x, y)."""
    cv2 = require("cv2", purpose="writing the test video")
    height, width = frame.shape[:2]
    ox, oy = origin
    ix, iy = int(np.floor(ox)), int(np.floor(oy))
    fx, fy = ox - ix, oy - iy
    sh, sw = sprite_image.shape[:2]
    x0, y0 = max(0, ix), max(0, iy)
    x1, y1 = min(width, ix + sw + 1), min(height, iy + sh + 1)
    if x1 <= x0 or y1 <= y0:
        return
    # A shift within one pixel, warped only over the sprite's own footprint.
    matrix = np.array([[1.0, 0.0, ix + fx - x0], [0.0, 1.0, iy + fy - y0]])
    patch = frame[y0:y1, x0:x1]
    cv2.warpAffine(
        sprite_image, matrix, (x1 - x0, y1 - y0), dst=patch, flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_TRANSPARENT,
    )  # fmt: skip


def compose_frame(
    size: Tuple[int, int],
    faces: Sequence[Tuple[str, int, Tuple[float, float]]],
) -> Tuple[np.ndarray, List[Tuple[float, float, float, float]]]:
    """One RGB frame with photographs placed on the background, and each face box (x0, y0,
    x1, y1): `faces` holds (photo, face_px, face box centre as fractions of width, height)."""
    width, height = size
    frame = background(width, height)
    boxes = []
    for photo, face_px, (cx, cy) in faces:
        sprite = _sprite(photo, face_px)
        ox = cx * width - sprite.face_offset[0] - face_px / 2.0
        oy = cy * height - sprite.face_offset[1] - face_px / 2.0
        place_face(frame, sprite.image, (ox, oy))
        x0, y0 = ox + sprite.face_offset[0], oy + sprite.face_offset[1]
        boxes.append((x0, y0, x0 + face_px, y0 + face_px))
    return frame, boxes


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
    centre: Tuple[float, float] = (0.5, 0.5),
    drift_px: float = 0.0,
    drift_period_s: float = 8.0,
    others: Sequence[Tuple[str, int, Tuple[float, float]]] = (),
) -> TestVideo:
    """Write the video (`.mp4` as mp4v, `.avi` as MJPG) and return where its events are.

    Args:
        size: (width, height) of the frames.
        face_px: side of the face box in the video, in pixels (BlazeFace's box is ~0.6 of it).
        events: (onset frame, onset-to-apex frames); the offset mirrors the rise.
        amplitude_px: peak displacement of mouth corners and brows at `face_px`.
        noise: standard deviation of the sensor noise added to every frame (grey levels).
        hidden: [start, end) frame ranges that show the background only (no face).
        centre: where the photograph's centre sits, as fractions of width and height.
        drift_px, drift_period_s: slow sway of the head (sub-pixel, a smooth loop).
        others: more people, still and expressionless: (photo, face_px, centre) each.
    """
    cv2 = require("cv2", purpose="writing the test video")
    path = Path(path)
    for name in [photo] + [o[0] for o in others]:
        if name not in FACE_PHOTOS:
            raise EdgeBuildError(f"unknown photo {name!r}; available: {', '.join(FACE_PHOTOS)}")
    fourcc = FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise EdgeBuildError(f"{path}: use .mp4, .mkv or .avi for the test video")
    width, height = size
    total = int(round(seconds * fps))
    planted = tuple(PlantedEvent(o, o + rise, o + 2 * rise) for o, rise in events)
    for event in planted:
        if event.onset < 1 or event.offset >= total or event.apex <= event.onset:
            raise EdgeBuildError(f"event {event} does not fit in {total} frames")

    sprite = _sprite(photo, face_px)
    sh, sw = sprite.image.shape[:2]
    ox, oy = centre[0] * width - sw / 2.0, centre[1] * height - sh / 2.0
    fx, fy = sprite.face_offset
    face_box = (
        int(round(ox + fx)),
        int(round(oy + fy)),
        int(round(ox + fx)) + face_px,
        int(round(oy + fy)) + face_px,
    )
    still = background(width, height)
    for other, other_px, (cx, cy) in others:
        extra = _sprite(other, other_px).image
        place_face(
            still, extra, (cx * width - extra.shape[1] / 2, cy * height - extra.shape[0] / 2)
        )

    levels: Dict[int, np.ndarray] = {}

    def sprite_at(amplitude: float) -> np.ndarray:
        key = int(round(amplitude * 20))
        if key not in levels:
            _, apex = micro_expression_pair(
                photo, size=face_px, amplitude_px=amplitude_px * key / 20
            )
            image = sprite.image.copy()
            image[fy : fy + face_px, fx : fx + face_px] = apex[: sh - fy, : sw - fx]
            levels[key] = image
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
            frame = still.copy()
            if not any(start <= index < end for start, end in hidden):
                dx, dy = drift_offset(index / fps, drift_px, drift_period_s)
                place_face(frame, sprite_at(amplitude), (ox + dx, oy + dy))
            if noise > 0:
                noisy = frame.astype(np.float32) + noises[index % len(noises)]
                frame = np.clip(noisy, 0, 255).astype(np.uint8)
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        writer.release()
    return TestVideo(
        path, float(fps), (width, height), total, photo, face_box, planted, float(drift_px)
    )


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
