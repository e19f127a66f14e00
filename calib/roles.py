"""One sample's frames for a model's roles, from any source that can render a position.

A source is two callables: the colour frame at a position between onset (0.0) and apex (1.0),
and optionally the relative-depth frame there. Synthetic clips, the packaged reference faces and
dataset clips all go through `frames_for_roles`, so every model (MMNet pairs, FAMNet clips,
AFNet-M depth) is fed by the same code whatever the data.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from edge.errors import CalibrationError
from edge.frames import is_depth, role_position

__all__ = ["frames_for_roles", "ramp_weight", "needs_depth"]

FrameAt = Callable[[float], np.ndarray]


def ramp_weight(position: float) -> float:
    """Expression strength at a position from onset to apex (raised cosine, 0 -> 1)."""
    return 0.5 - 0.5 * math.cos(math.pi * min(max(position, 0.0), 1.0))


def needs_depth(roles: Sequence[str]) -> bool:
    return any(is_depth(r) for r in roles)


def frames_for_roles(
    roles: Sequence[str],
    frame_at: FrameAt,
    depth_at: Optional[FrameAt] = None,
    *,
    where: str = "sample",
) -> Dict[str, np.ndarray]:
    """role -> uint8 frame (HxWx3 colour, HxW relative depth); each position rendered once."""
    colour: Dict[float, np.ndarray] = {}
    depth: Dict[float, np.ndarray] = {}
    out: Dict[str, np.ndarray] = {}
    for role in roles:
        position = role_position(role, roles)
        if is_depth(role):
            if depth_at is None:
                raise CalibrationError(
                    f"{where}: the model reads depth ({role}) and this source has no depth frames"
                )
            if position not in depth:
                depth[position] = depth_at(position)
            out[role] = depth[position]
        else:
            if position not in colour:
                colour[position] = frame_at(position)
            out[role] = colour[position]
    return out
