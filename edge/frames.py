"""Frame roles: which frames of a clip a model reads, and where each sits between onset and apex.

A sample is stored as one uint8 frame per role (`Preprocessing.frames`), so the bundle's
validation set, calibration tensors and live events share one layout whatever the model:
MMNet reads `onset` and `apex`, FAMNet `apex` plus `clip:0`..`clip:T-1`, AFNet-M `apex` and
`depth:apex`. Every role has a position in [0, 1] from onset to apex; a video event, a dataset
sample and the synthetic generator all turn that position into a frame the same way.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

from edge.errors import EdgeBuildError

__all__ = [
    "CLIP_PREFIX",
    "DEPTH_PREFIX",
    "clip_roles",
    "clip_length",
    "is_depth",
    "colour_role",
    "role_position",
    "frame_index",
    "role_indices",
]

CLIP_PREFIX = "clip:"
DEPTH_PREFIX = "depth:"


def clip_roles(length: int) -> Tuple[str, ...]:
    """`clip:0`..`clip:{length-1}`: T frames evenly spaced from onset to apex."""
    if length < 2:
        raise EdgeBuildError(f"a clip needs at least 2 frames, got {length}")
    return tuple(f"{CLIP_PREFIX}{k}" for k in range(length))


def clip_length(roles: Sequence[str]) -> int:
    return sum(1 for r in roles if r.startswith(CLIP_PREFIX))


def is_depth(role: str) -> bool:
    return role.startswith(DEPTH_PREFIX)


def colour_role(role: str) -> str:
    """The colour frame a role is taken at (`depth:apex` -> `apex`)."""
    return role[len(DEPTH_PREFIX) :] if is_depth(role) else role


def role_position(role: str, roles: Sequence[str]) -> float:
    """0.0 at onset, 1.0 at apex; clip frames evenly in between."""
    base = colour_role(role)
    if base == "onset":
        return 0.0
    if base == "apex":
        return 1.0
    if base.startswith(CLIP_PREFIX):
        length = clip_length(roles)
        try:
            k = int(base[len(CLIP_PREFIX) :])
        except ValueError:
            raise EdgeBuildError(f"bad clip role {role!r}") from None
        if not 0 <= k < length or length < 2:
            raise EdgeBuildError(f"clip role {role!r} outside a clip of {length} frames")
        return k / (length - 1)
    raise EdgeBuildError(f"unknown frame role {role!r}")


def frame_index(position: float, onset: int, apex: int) -> int:
    return int(round(onset + position * (apex - onset)))


def role_indices(roles: Sequence[str], onset: int, apex: int) -> List[int]:
    """The video frame number each role reads for an event from `onset` to `apex`."""
    return [frame_index(role_position(r, roles), onset, apex) for r in roles]
