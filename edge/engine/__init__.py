"""TensorRT engine builds on the device, following the version policy of ARCHITECTURE.md §3.

`plan_build` (pure) decides flags from `TrtCaps`; `apply_plan` applies them to a real builder;
`engine_from_bundle` builds into a bundle and records the engine key in its manifest;
`device_command` prints the command that does it on the Jetson. Importing this package needs
numpy only: TensorRT and CUDA are imported by the callers that use them.
"""

from __future__ import annotations

from edge.engine.adapter import BuildOutput, apply_plan
from edge.engine.build import (
    device_command,
    engine_for_device,
    engine_from_bundle,
    find_engine,
    plan_for_bundle,
    record_engine,
)
from edge.engine.device import DeviceInfo, probe_device
from edge.engine.key import EngineKey, engine_file, engine_key, timing_cache_file
from edge.engine.plan import PRECISIONS, BuildPlan, plan_build

__all__ = [
    "PRECISIONS",
    "BuildOutput",
    "BuildPlan",
    "DeviceInfo",
    "EngineKey",
    "apply_plan",
    "device_command",
    "engine_file",
    "engine_for_device",
    "engine_from_bundle",
    "engine_key",
    "find_engine",
    "plan_build",
    "plan_for_bundle",
    "probe_device",
    "record_engine",
    "timing_cache_file",
]
