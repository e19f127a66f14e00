"""What device this is, read from the files a Jetson has, and null where it does not.

Nothing is guessed: a value absent from /etc/nv_tegra_release, /proc/device-tree/model, the
dpkg status of `nvidia-jetpack` or the CUDA runtime is recorded as None (jetson-containers'
fabricated "39.1.0" on x86 is the failure this avoids).
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from edge._lazy import require
from edge.errors import EdgeBuildError

__all__ = ["DeviceInfo", "probe_device", "parse_tegra_release", "load_cudart", "cuda_check"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    model: Optional[str]  # /proc/device-tree/model, e.g. "NVIDIA Jetson AGX Orin Developer Kit"
    l4t: Optional[str]  # from /etc/nv_tegra_release, e.g. "36.4.0"
    jetpack: Optional[str]  # version of the nvidia-jetpack package, when installed
    compute_capability: Optional[str]  # "8.7" from the CUDA runtime

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def parse_tegra_release(text: str) -> Optional[str]:
    """'# R36 (release), REVISION: 4.0, ...' -> '36.4.0'; None when the line is not there."""
    match = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)", text)
    if not match:
        return None
    return "{}.{}".format(match.group(1), match.group(2).rstrip("."))


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def _jetpack(status: Optional[str]) -> Optional[str]:
    if not status:
        return None
    for stanza in status.split("\n\n"):
        if re.search(r"^Package: nvidia-jetpack$", stanza, re.M):
            match = re.search(r"^Version: (\S+)$", stanza, re.M)
            if match and re.search(r"^Status: .* installed$", stanza, re.M):
                return match.group(1)
    return None


def load_cudart() -> Any:
    """cuda-python's runtime module: `cuda.bindings.runtime`, else the older `cuda.cudart`."""
    try:
        return require("cuda.bindings.runtime", purpose="TensorRT on the GPU")
    except ImportError as first:
        try:
            return require("cuda.cudart", purpose="TensorRT on the GPU")
        except ImportError:
            raise first from None


def cuda_check(result: Any, call: str) -> Any:
    """Unpack a cuda-python `(err, value...)` tuple, raising on an error code."""
    if not isinstance(result, tuple):
        result = (result,)
    err = result[0]
    code = int(getattr(err, "value", err))
    if code != 0:
        raise EdgeBuildError(f"CUDA {call} failed: {err}")
    if len(result) == 1:
        return None
    return result[1] if len(result) == 2 else result[1:]


def _compute_capability(cudart: Any) -> Optional[str]:
    device = cuda_check(cudart.cudaGetDevice(), "cudaGetDevice")
    props = cuda_check(cudart.cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    return f"{props.major}.{props.minor}"


def probe_device(root: Path = Path("/"), *, cudart: Any = None) -> DeviceInfo:
    """Read the device's identity; `root` lets tests point at a fake filesystem tree."""
    model = _read(root / "proc/device-tree/model")
    release = _read(root / "etc/nv_tegra_release")
    capability = None
    if cudart is not None:
        capability = _compute_capability(cudart)
    return DeviceInfo(
        model=model.strip("\0\n ") or None if model else None,
        l4t=parse_tegra_release(release) if release else None,
        jetpack=_jetpack(_read(root / "var/lib/dpkg/status")),
        compute_capability=capability,
    )
