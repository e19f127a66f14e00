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
from edge.errors import EdgeBuildError, MissingDependencyError

__all__ = [
    "DeviceInfo",
    "probe_device",
    "parse_tegra_release",
    "load_cudart",
    "load_tensorrt",
    "require_cuda_driver",
    "cuda_check",
    "TENSORRT_HINT",
    "CUDA_PYTHON_HINT",
    "DRIVER_HINT",
]

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


#: One line each, naming what to install; the device commands print them as they are.
TENSORRT_HINT = (
    "TensorRT's Python bindings are not installed: on a Jetson run `sudo apt install "
    "python3-libnvinfer` (JetPack's TensorRT; it is not installable from PyPI)"
)
CUDA_PYTHON_HINT = (
    "cuda-python is not installed: run `pip install 'mer-edge[jetson]'` (cuda-python 11.x for "
    "JetPack 5, 12.x for JetPack 6, 13.x for JetPack 7)"
)
DRIVER_HINT = (
    "no usable CUDA driver ({detail}): install the NVIDIA driver (on a Jetson it comes with "
    "JetPack: `sudo apt install nvidia-jetpack`; elsewhere a driver for CUDA {cuda} or newer)"
)


def load_tensorrt() -> Any:
    """`import tensorrt`, or MissingDependencyError with the one-line install hint."""
    try:
        import tensorrt  # noqa: F401  (JetPack's system package)
    except ImportError as exc:
        raise MissingDependencyError(f"{TENSORRT_HINT} ({exc})") from exc
    return tensorrt


def load_cudart() -> Any:
    """cuda-python's runtime module: `cuda.bindings.runtime`, else the older `cuda.cudart`."""
    try:
        return require("cuda.bindings.runtime", purpose="TensorRT on the GPU")
    except ImportError as first:
        try:
            return require("cuda.cudart", purpose="TensorRT on the GPU")
        except ImportError:
            raise MissingDependencyError(CUDA_PYTHON_HINT) from first


def _error_name(err: Any) -> str:
    name = getattr(err, "name", None)
    return f"{name} ({int(getattr(err, 'value', err))})" if name else f"CUDA error {err}"


def _runtime_version(cudart: Any) -> str:
    """'13.0' from cudaRuntimeGetVersion (needs no driver), or a description when unknown."""
    try:
        err, version = cudart.cudaRuntimeGetVersion()
        if int(getattr(err, "value", err)) == 0:
            return f"{int(version) // 1000}.{int(version) % 1000 // 10}"
    except Exception:  # an old or broken binding: the hint still names the driver
        pass
    return "your CUDA runtime"


def require_cuda_driver(cudart: Any) -> int:
    """The number of CUDA devices; MissingDependencyError naming the driver when there is none.

    cuda-python imports without a driver; its first call then fails: with
    cudaErrorInsufficientDriver (35) when libcuda is missing or too old, cudaErrorNoDevice (100)
    without a GPU, or an exception when not even the CUDA runtime library can be loaded.
    """
    cuda = _runtime_version(cudart)
    try:
        result = cudart.cudaGetDeviceCount()
    except Exception as exc:  # DynamicLibNotFoundError, RuntimeError: no libcudart/libcuda
        raise MissingDependencyError(
            DRIVER_HINT.format(detail=f"{type(exc).__name__}: {exc}", cuda=cuda)
        ) from exc
    if not isinstance(result, tuple):
        result = (result, 0)
    err, count = result[0], result[1]
    if int(getattr(err, "value", err)) != 0:
        raise MissingDependencyError(
            DRIVER_HINT.format(detail="cudaGetDeviceCount: " + _error_name(err), cuda=cuda)
        )
    if not count:
        raise MissingDependencyError(
            DRIVER_HINT.format(detail="cudaGetDeviceCount found no GPU", cuda=cuda)
        )
    return int(count)


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
