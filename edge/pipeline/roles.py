"""An event's frames for the model's roles: colour crops from the clip, depth from its source."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Set

import numpy as np

from edge.align.aligner import Registration
from edge.errors import EdgeBuildError
from edge.frames import is_depth, role_indices
from edge.pipeline.depth import DepthSource
from edge.spec import ModelSpec

__all__ = ["needed_frames", "event_frames", "check_depth"]


def needed_frames(spec: ModelSpec, onset: int, apex: int) -> Set[int]:
    """Video frame numbers whose colour crops the model reads for this event."""
    roles = spec.preprocessing.frames
    return {i for r, i in zip(roles, role_indices(roles, onset, apex)) if not is_depth(r)}


def check_depth(spec: ModelSpec, depth: Optional[DepthSource]) -> None:
    if depth is None and any(is_depth(r) for r in spec.preprocessing.frames):
        raise EdgeBuildError(
            f"{spec.arch} reads depth ({', '.join(r for r in spec.preprocessing.frames if is_depth(r))}): "
            "pass --depth DIR (a folder of depth images, one per video frame) or --depth proxy "
            "(a face-shaped stand-in, not a measurement)"
        )


def event_frames(
    spec: ModelSpec,
    onset: int,
    apex: int,
    crop: Callable[[int], Optional[np.ndarray]],
    registration: Registration,
    depth: Optional[DepthSource],
) -> Optional[Dict[str, np.ndarray]]:
    """role -> frame; None when a colour crop the model needs is no longer available."""
    roles = spec.preprocessing.frames
    out: Dict[str, np.ndarray] = {}
    for role, index in zip(roles, role_indices(roles, onset, apex)):
        if is_depth(role):
            check_depth(spec, depth)
            out[role] = depth.frame(index, registration)  # type: ignore[union-attr]
            continue
        frame = crop(index)
        if frame is None:
            return None
        out[role] = frame
    return out
