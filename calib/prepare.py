"""Calibration / validation tensors, prepared exactly as the runtime prepares frames.

The work is split by job: `calib.sets` (the set type, its cache and checks), `calib.synth_sets`
(sets rendered by `calib.synth`) and `calib.dataset_frames` (dataset clips, read and registered
as `edge-run` registers an event). This module is the entry point that gathers them.
"""

from __future__ import annotations

from calib.dataset_frames import (
    depth_folder,
    prepare_samples,
    read_depth,
    read_pair,
    read_roles,
    register_roles,
)
from calib.sets import (
    CalibrationSet,
    balanced_indices,
    check_inputs,
    default_cache_dir,
    load_npz_folder,
    prepare_frame_sets,
)
from calib.synth_sets import GENERATOR_VERSION, prepare_synthetic

__all__ = [
    "CalibrationSet",
    "balanced_indices",
    "check_inputs",
    "prepare_synthetic",
    "prepare_frame_sets",
    "read_roles",
    "read_depth",
    "depth_folder",
    "register_roles",
    "prepare_samples",
    "read_pair",
    "load_npz_folder",
    "default_cache_dir",
    "GENERATOR_VERSION",
]
