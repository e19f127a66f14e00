"""Onset/apex spotting: motion magnitude of the registered face over a sliding window.

The feature-difference method (Moilanen et al., ICPR 2014, doi:10.1109/ICPR.2014.303): frame t
is compared with the mean of the frames k before and k after it. A short micro-expression
(onset -> apex -> offset within ~0.5 s) makes that difference peak at its apex, while slow head
drift and lighting changes, which are linear over the window, cancel. A further contrast step
subtracts the mean of the neighbours' values; the peak frame is the apex and t - k the onset.
Runs causally with a lag of about 3k frames, so it works on a live camera.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, List, Optional, Tuple

import numpy as np

from edge._lazy import require

__all__ = ["Spot", "Spotter", "motion_image"]

MOTION_SIZE = 112


@dataclass(frozen=True)
class Spot:
    """A spotted event: onset and apex frame indices and times, and the peak's strength."""

    onset: int
    apex: int
    onset_time_s: float
    apex_time_s: float
    magnitude: float
    threshold: float


def _face_mask(size: int) -> np.ndarray:
    """An ellipse covering the face inside the registered crop (background and hair excluded)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    inside = ((xx - 0.5) / 0.36) ** 2 + ((yy - 0.55) / 0.45) ** 2 <= 1.0
    return inside


def motion_image(aligned: np.ndarray, size: int = MOTION_SIZE) -> np.ndarray:
    """Registered face crop -> small float32 grey image the motion measure works on."""
    cv2 = require("cv2", purpose="spotting")
    grey = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY) if aligned.ndim == 3 else aligned
    if grey.shape[0] != size or grey.shape[1] != size:
        grey = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    return grey.astype(np.float32)


class Spotter:
    """`push(index, time, grey)` frames of one registered clip; returns spots as they confirm.

    Args:
        fps: nominal frame rate; the window half-width is `half_window_s` in frames.
        half_window_s: k in seconds (onset-to-apex of a micro-expression is ~0.1-0.25 s).
        z: a peak must exceed the clip's median contrast by `z` robust standard deviations.
        min_motion: and be at least this many grey levels of mean absolute change.
    """

    def __init__(
        self,
        fps: float,
        *,
        half_window_s: float = 0.2,
        z: float = 8.0,
        min_motion: float = 0.5,
        min_history: int = 12,
        history: int = 1800,
    ) -> None:
        self.k = max(2, int(round(half_window_s * fps)))
        self.z = z
        self.min_motion = min_motion
        self.min_history = min_history
        self._mask = _face_mask(MOTION_SIZE)
        k = self.k
        self._frames: Deque[Tuple[int, float, np.ndarray]] = deque(maxlen=2 * k + 1)
        self._order: Deque[Tuple[int, float]] = deque(maxlen=8 * k + 4)
        self._feature: Deque[Tuple[int, float, float]] = deque(maxlen=2 * k + 1)
        self._recent: Deque[Tuple[int, float, float]] = deque(maxlen=2 * k + 1)
        self._history: Deque[float] = deque(maxlen=history)
        self._last_checked = -1
        self._last_apex: Optional[int] = None

    def _difference(self) -> Tuple[int, float, float]:
        head = self._frames[0][2]
        index, time_s, centre = self._frames[self.k]
        tail = self._frames[-1][2]
        diff = np.abs(centre - 0.5 * (head + tail))
        return index, time_s, float(diff[self._mask].mean())

    def threshold(self) -> float:
        """Median + z robust standard deviations of the recent contrast values."""
        if len(self._history) < self.min_history:
            return float("inf")
        values = np.fromiter(self._history, dtype=np.float64)
        median = float(np.median(values))
        mad = float(np.median(np.abs(values - median))) * 1.4826
        return max(self.min_motion, median + self.z * mad)

    def push(self, index: int, time_s: float, grey: np.ndarray) -> List[Spot]:
        """Add the next registered frame; returns the spots this frame confirms."""
        self._frames.append((index, time_s, grey))
        self._order.append((index, time_s))
        if len(self._frames) == self._frames.maxlen:
            self._feature.append(self._difference())
            if len(self._feature) == self._feature.maxlen:
                i, t, f = self._feature[self.k]
                neighbours = 0.5 * (self._feature[0][2] + self._feature[-1][2])
                value = max(0.0, f - neighbours)
                self._recent.append((i, t, value))
                self._history.append(value)
        return self._confirm(final=False)

    def flush(self) -> List[Spot]:
        """End of the clip: confirm what the remaining lag allows."""
        return self._confirm(final=True)

    def _confirm(self, *, final: bool) -> List[Spot]:
        spots: List[Spot] = []
        recent = list(self._recent)
        threshold = self.threshold()
        for p, (index, time_s, value) in enumerate(recent):
            if index <= self._last_checked:
                continue
            if not final and p + self.k >= len(recent):
                break
            self._last_checked = index
            if value < threshold:
                continue
            window = recent[max(0, p - self.k) : p + self.k + 1]
            if any(v > value for _, _, v in window):
                continue
            if self._last_apex is not None and index - self._last_apex <= self.k:
                continue
            self._last_apex = index
            onset_index, onset_time = self._onset_of(index)
            spots.append(Spot(onset_index, index, onset_time, time_s, value, threshold))
        return spots

    def _onset_of(self, apex: int) -> Tuple[int, float]:
        """The frame k positions before the apex in the clip (the head of its window)."""
        order = list(self._order)
        positions = [i for i, (index, _) in enumerate(order) if index == apex]
        position = max(0, positions[0] - self.k) if positions else 0
        return order[position]
