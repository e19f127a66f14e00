"""The key an engine is valid for, and file names derived from it.

Engines and timing caches are not portable across GPUs, JetPack releases or TensorRT versions
(tensorrt.md section 3), so each one is stored under, and checked against, this key.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

from edge.engine.device import DeviceInfo

__all__ = ["EngineKey", "engine_key", "engine_file", "timing_cache_file"]


@dataclass(frozen=True)
class EngineKey:
    device_model: Optional[str]
    compute_capability: Optional[str]
    l4t: Optional[str]
    jetpack: Optional[str]
    tensorrt: str
    precision: str

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> EngineKey:
        return cls(
            device_model=data.get("device_model"),
            compute_capability=data.get("compute_capability"),
            l4t=data.get("l4t"),
            jetpack=data.get("jetpack"),
            tensorrt=str(data["tensorrt"]),
            precision=str(data["precision"]),
        )

    def mismatches(self, current: EngineKey) -> List[str]:
        """Fields where an engine built under `self` cannot run under `current`.

        TensorRT versions must match exactly; device fields are compared when both sides
        know them (an unknown value is never taken as a match or a mismatch silently: the
        caller logs it).
        """
        problems = []
        if self.tensorrt != current.tensorrt:
            problems.append(f"TensorRT {self.tensorrt} vs {current.tensorrt}")
        for field in ("compute_capability", "device_model", "l4t"):
            built, here = getattr(self, field), getattr(current, field)
            if built is not None and here is not None and built != here:
                problems.append(f"{field} {built} vs {here}")
        return problems

    def describe(self) -> str:
        return "TensorRT {}, {} (SM {}), L4T {}, {}".format(
            self.tensorrt,
            self.device_model or "unknown device",
            self.compute_capability or "unknown",
            self.l4t or "unknown",
            self.precision,
        )


def engine_key(device: DeviceInfo, tensorrt: str, precision: str) -> EngineKey:
    return EngineKey(
        device_model=device.model,
        compute_capability=device.compute_capability,
        l4t=device.l4t,
        jetpack=device.jetpack,
        tensorrt=tensorrt,
        precision=precision,
    )


def _slug(key: EngineKey) -> str:
    device = key.device_model or "unknown-device"
    if key.compute_capability:
        device += "-sm" + key.compute_capability.replace(".", "")
    text = f"{device}.trt{key.tensorrt}"
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


def engine_file(key: EngineKey) -> str:
    """Bundle-relative file name of the raw TensorRT plan (no header: trtexec can load it)."""
    return f"engines/{_slug(key)}/engine.{key.precision}.plan"


def timing_cache_file(key: EngineKey) -> str:
    """One timing cache per device and TensorRT version, shared by its precisions."""
    return f"engines/{_slug(key)}/timing.cache"
