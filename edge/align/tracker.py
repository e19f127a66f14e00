"""Following one face through a video: search when lost, cheap re-detection in between.

A full search (`FaceSearch`) costs several detector calls and grows with the frame; re-finding
a known face costs one short-range call on a window around it, whatever the frame size. So the
tracker searches the whole frame only to acquire a face (and on a slow schedule, to notice new
faces and a track that slid onto something else), and otherwise re-detects in the window every
`track_every` frames. Several faces: the largest is followed, or the `face`-th from the left.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional, Protocol

import numpy as np

from edge.align.detector import Detection
from edge.errors import EdgeBuildError

__all__ = ["TrackerConfig", "TrackedFace", "FaceTracker", "Searcher"]


@dataclass(frozen=True)
class TrackerConfig:
    """Schedules in frames; `face=None` follows the largest face, `face=N` the N-th from the
    left (0-based) when a track starts."""

    track_every: int = 2
    search_every: int = 150
    retry_every: int = 6
    lost_after: int = 2
    face: Optional[int] = None

    def __post_init__(self) -> None:
        for name in ("track_every", "search_every", "retry_every", "lost_after"):
            if getattr(self, name) < 1:
                raise EdgeBuildError(f"tracker {name} must be >= 1, got {getattr(self, name)}")
        if self.face is not None and self.face < 0:
            raise EdgeBuildError(f"--face must be >= 0, got {self.face}")


@dataclass(frozen=True)
class TrackedFace:
    """The followed face on this frame: its latest detection (`fresh` when measured on this
    frame), its track (a new number each time a face is acquired), how many faces the last
    search saw, and why this one."""

    detection: Detection
    track: int
    faces: int
    choice: str
    fresh: bool

    @property
    def size(self) -> float:
        return self.detection.size


class Searcher(Protocol):
    """What the tracker needs: faces anywhere (largest first), and near a known face."""

    def search(self, image: np.ndarray, *, bgr: bool = False) -> List[Detection]: ...

    def redetect(
        self, image: np.ndarray, last: Detection, *, bgr: bool = False
    ) -> List[Detection]: ...


def _iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceTracker:
    """`tracker.update(frame) -> TrackedFace | None`, once per frame, in order."""

    def __init__(self, search: Searcher, config: Optional[TrackerConfig] = None) -> None:
        self.search = search
        self.config = config or TrackerConfig()
        self.face: Optional[TrackedFace] = None
        self.tracks = 0
        self.searches = 0
        self.redetections = 0
        self._since_track = 0
        self._since_search = 0
        self._misses = 0
        self._faces = 0
        self.reason = "no face detected"

    def reset(self) -> None:
        self.face = None
        self._misses = 0

    def _choose(self, faces: List[Detection]) -> Optional[Detection]:
        self._faces = len(faces)
        if not faces:
            self.reason = "no face detected"
            return None
        if self.config.face is None:
            return faces[0]  # largest first
        by_x = sorted(faces, key=lambda d: d.centre[0])
        if self.config.face >= len(by_x):
            self.reason = f"face {self.config.face} asked for, {len(by_x)} found"
            return None
        return by_x[self.config.face]

    def _describe(self) -> str:
        if self.config.face is None:
            return "largest" if self._faces > 1 else "only"
        return f"{self.config.face} from the left"

    def _full_search(self, image: np.ndarray, bgr: bool) -> Optional[Detection]:
        self.searches += 1
        self._since_search = 0
        return self._choose(self.search.search(image, bgr=bgr))

    def _acquire(self, image: np.ndarray, bgr: bool) -> Optional[TrackedFace]:
        found = self._full_search(image, bgr)
        if found is None:
            self.face = None
            return None
        self.tracks += 1
        self._misses = 0
        self._since_track = 0
        self.face = TrackedFace(found, self.tracks, self._faces, self._describe(), True)
        return self.face

    def _redetect(self, image: np.ndarray, bgr: bool) -> Optional[Detection]:
        """The tracked face re-found in its window: the candidate overlapping it most."""
        assert self.face is not None
        self.redetections += 1
        last = self.face.detection
        found = self.search.redetect(image, last, bgr=bgr)
        best = max(found, key=lambda d: _iou(d.box, last.box), default=None)
        if best is None or _iou(best.box, last.box) < 0.2:
            return None
        return best

    def update(
        self, image: np.ndarray, *, bgr: bool = False, force: bool = False
    ) -> Optional[TrackedFace]:
        """The followed face on this frame, or None; `force` re-detects now (the caller saw
        the face region change)."""
        self._since_track += 1
        self._since_search += 1
        if self.face is None:
            if not force and self._since_search < self.config.retry_every and self.searches:
                return None
            return self._acquire(image, bgr)
        if self._since_search >= self.config.search_every:
            # Scheduled search: count faces, and keep the track only if a search confirms it.
            chosen = self._full_search(image, bgr)
            if chosen is not None and _iou(chosen.box, self.face.detection.box) >= 0.3:
                self._since_track = 0
                self.face = replace(self.face, detection=chosen, faces=self._faces, fresh=True)
                return self.face
            self.face = None
            return self._acquire(image, bgr) if chosen is not None else None
        if not force and self._since_track < self.config.track_every:
            self.face = replace(self.face, fresh=False)
            return self.face
        self._since_track = 0
        found = self._redetect(image, bgr)
        if found is not None:
            self._misses = 0
            self.face = replace(self.face, detection=found, fresh=True)
            return self.face
        self._misses += 1
        if self._misses < self.config.lost_after and not force:
            self.face = replace(self.face, fresh=False)
            return self.face
        self.face = None  # lost: look everywhere at once (it may have jumped)
        return self._acquire(image, bgr)
