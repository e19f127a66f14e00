"""One event, registered once: the transform found on the reference frame applied to all frames.

Calibration (`calib.frames`), validation and `edge-run` all register an event's frames through
`register_event`, so the tensors INT8 is calibrated on are made exactly as the device makes
them: one similarity transform per event, fitted on the reference (onset) frame, applied to every
colour frame with the aligner's warp and to every depth frame with nearest-neighbour warping,
then turned into relative depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Hashable, Mapping, TypeVar, Union

import numpy as np

from edge.align.aligner import FaceAligner, NoFace, Registration
from edge.align.template import warp_depth
from edge.depth import relative_depth

__all__ = ["RegisteredEvent", "register_event", "warp_event", "register_depth"]

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class RegisteredEvent:
    """The registration of an event and its frames in crop coordinates (same keys as given)."""

    registration: Registration
    frames: Dict[Hashable, np.ndarray]


def register_depth(depth_mm: np.ndarray, registration: Registration, range_mm: float) -> np.ndarray:
    """A depth frame registered with its colour frame's transform, as relative depth (uint8)."""
    warped = warp_depth(depth_mm, registration.matrix, registration.size)
    return relative_depth(warped, range_mm)


def warp_event(
    aligner: FaceAligner,
    registration: Registration,
    colour: Mapping[Key, np.ndarray],
    depth: Mapping[Key, np.ndarray] = {},  # noqa: B006 (never mutated)
    *,
    depth_range_mm: float = 100.0,
) -> Dict[Key, np.ndarray]:
    """Every frame of an event in crop coordinates, with the event's one registration.

    Args:
        aligner: the `FaceAligner` that made `registration`; its `warp` keeps the channel
            order of the frames it gets.
        registration: the event's registration (found on its onset).
        colour: key (a role or a frame number) -> HxWx3 frame to crop.
        depth: key -> HxW depth in millimetres (0 = no reading), registered with the colour
            camera; each becomes relative depth (255 = nearest face point) in the crop.
        depth_range_mm: how far behind the nearest face point relative depth reaches 0.
    """
    frames = {key: aligner.warp(frame, registration) for key, frame in colour.items()}
    for key, frame in depth.items():
        frames[key] = register_depth(frame, registration, depth_range_mm)
    return frames


def register_event(
    aligner: FaceAligner,
    reference: np.ndarray,
    colour: Mapping[Key, np.ndarray],
    depth: Mapping[Key, np.ndarray] = {},  # noqa: B006 (never mutated)
    *,
    depth_range_mm: float = 100.0,
) -> Union[RegisteredEvent, NoFace]:
    """Register on `reference` (the onset, HxWx3 RGB), then `warp_event` every frame.

    Returns:
        The registration and key -> registered frame, or `NoFace` when no face was found.
    """
    registration = aligner.register(reference)
    if isinstance(registration, NoFace):
        return registration
    frames = warp_event(aligner, registration, colour, depth, depth_range_mm=depth_range_mm)
    return RegisteredEvent(registration, dict(frames))
