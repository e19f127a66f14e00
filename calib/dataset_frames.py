"""Dataset clips as calibration sets: read an event's frames, register them as the device does.

Frames are read from a dataset sample's folder (depth from CAS(ME)^3's sibling `depth/`), then
registered by `edge.align.register_event`, the function `edge-run` uses: one transform fitted on
the onset frame, applied to every colour and depth frame of the event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from calib.sets import CalibrationSet, balanced_indices, cache_key, cached, prepare_frame_sets
from edge._lazy import require
from edge.errors import CalibrationError
from edge.spec import ModelSpec

__all__ = [
    "read_pair",
    "read_roles",
    "read_depth",
    "depth_folder",
    "register_roles",
    "prepare_samples",
]


def read_pair(sample, *, color: str = "RGB") -> Tuple[np.ndarray, np.ndarray]:
    """The onset and apex frames of a dataset sample, as HxWx3 uint8 images."""
    frames = read_roles(sample, ("onset", "apex"), color=color)
    return frames["onset"], frames["apex"]


def depth_folder(frame_dir: Path) -> Optional[Path]:
    """CAS(ME)^3 keeps depth beside colour: `<clip>/color/` and `<clip>/depth/`."""
    if frame_dir.name == "color" and (frame_dir.parent / "depth").is_dir():
        return frame_dir.parent / "depth"
    return None


def read_roles(sample, roles: Sequence[str], *, color: str = "RGB") -> Dict[str, np.ndarray]:
    """role -> frame of a dataset sample: colour HxWx3 uint8, depth HxW in mm (raw, unaligned)."""
    from calib.datasets import frame_index
    from edge.classify import read_frame
    from edge.frames import colour_role, is_depth, role_indices

    if sample.frame_dir is None or sample.onset is None or sample.apex is None:
        raise CalibrationError(f"{sample.sample_id}: no frame folder or onset/apex frame number")
    folder = Path(sample.frame_dir)
    index = frame_index(folder)
    numbers = dict(zip(roles, role_indices(roles, sample.onset, sample.apex)))
    depth_index = None
    if any(is_depth(r) for r in roles):
        depth_dir = depth_folder(folder)
        if depth_dir is None:
            raise CalibrationError(
                f"{sample.sample_id}: the model reads depth and {folder} has no sibling depth/ "
                "folder (CAS(ME)^3 layout)"
            )
        depth_index = frame_index(depth_dir)
    frames: Dict[str, np.ndarray] = {}
    for role, number in numbers.items():
        found = depth_index if is_depth(role) else index
        if number not in found:
            kind = "depth frame" if is_depth(role) else "frame"
            raise CalibrationError(
                f"{sample.sample_id}: {kind} {number} ({colour_role(role)}) not found in "
                f"{found_dir(folder, is_depth(role))}"
            )
        frames[role] = (
            read_depth(found[number]) if is_depth(role) else read_frame(found[number], color)
        )
    return frames


def found_dir(folder: Path, depth: bool) -> Path:
    return (depth_folder(folder) or folder) if depth else folder


def read_depth(path: Path) -> np.ndarray:
    """A 16-bit depth PNG (millimetres, 0 = no reading) as HxW uint16."""
    cv2 = require("cv2", purpose="reading depth frames")
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise CalibrationError(f"{path}: unreadable depth image")
    if depth.ndim == 3:
        depth = depth[:, :, 0]
    return depth


def register_roles(aligner, sample, spec: ModelSpec) -> Optional[Dict[str, np.ndarray]]:
    """role -> registered frame of a dataset sample, as `edge-run` registers an event: on the
    onset frame, one transform for every colour and depth frame; None when there is no face."""
    from edge.align import NoFace, register_event
    from edge.frames import is_depth

    prep = spec.preprocessing
    roles = tuple(prep.frames)
    reference = "onset"
    frames = read_roles(sample, roles if reference in roles else roles + (reference,),
                        color=prep.color)  # fmt: skip
    event = register_event(
        aligner,
        frames[reference],
        {r: frames[r] for r in roles if not is_depth(r)},
        {r: frames[r] for r in roles if is_depth(r)},
        depth_range_mm=prep.depth_range_mm,
    )
    if isinstance(event, NoFace):
        return None
    return {role: event.frames[role] for role in roles}


def prepare_samples(
    spec: ModelSpec,
    samples: Sequence,
    n: int,
    *,
    seed: int = 0,
    alignment: str = "precropped",
    source: str = "dataset",
    cache_dir: Optional[Path] = None,
) -> CalibrationSet:
    """Balanced onset/apex pairs from dataset samples, aligned as the runtime aligns them.

    `precropped` is for datasets that ship registered crops (CASME II `Cropped`); `mediapipe` or
    `dlib` register each clip once on its onset frame and warp both frames with that transform,
    exactly like `edge-run`. Samples whose emotion is not a class of the model are left out.
    """
    classes = set(spec.class_names)
    usable = [
        s for s in samples
        if s.emotion in classes and s.frame_dir is not None
        and s.onset is not None and s.apex is not None
    ]  # fmt: skip
    if not usable:
        raise CalibrationError(
            "{}: no sample has onset/apex frames and an emotion among {}".format(
                source, ", ".join(spec.class_names)
            )
        )
    chosen = [
        usable[i]
        for i in balanced_indices(
            [s.emotion for s in usable], [s.subject for s in usable], min(n, len(usable)), seed=seed
        )  # fmt: skip
    ]
    stamps = []
    for s in chosen:
        folder = Path(s.frame_dir)
        stamps.append([s.sample_id, s.onset, s.apex, folder.is_dir() and folder.stat().st_mtime])
    key = cache_key({
        "source": source, "samples": stamps, "alignment": alignment, "registered_on": "onset",
        "classes": list(spec.class_names), "preprocessing": spec.preprocessing.to_dict(),
    })  # fmt: skip

    def build() -> CalibrationSet:
        from edge.align import make_aligner

        aligner = make_aligner(alignment, size=spec.preprocessing.storage_size[0])
        aligned_sets, kept = [], []
        for sample in chosen:
            aligned = register_roles(aligner, sample, spec)
            if aligned is None:
                continue  # counted below: a clip without a face calibrates nothing
            aligned_sets.append(aligned)
            kept.append(sample)
        if not aligned_sets:
            raise CalibrationError(f"{source}: no face found in any selected clip")
        return prepare_frame_sets(
            spec,
            aligned_sets,
            sample_ids=[s.sample_id for s in kept],
            subjects=[s.subject for s in kept],
            labels=[s.emotion for s in kept],
            source=f"{source} ({len(kept)} of {len(chosen)} clips, {alignment} alignment)",
            key=key,
        )

    return cached(key, cache_dir, build)
