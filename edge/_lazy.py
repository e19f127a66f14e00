"""Lazy imports of optional heavy dependencies.

Device-side modules must import on a Jetson's system Python with only numpy present, so
torch, onnx, onnxruntime, tensorrt and cuda are imported on first use and fail with a message
that names the extra (or the JetPack package) to install. Nothing is ever auto-installed.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Optional

from edge.errors import MissingDependencyError

__all__ = ["require", "is_available", "INSTALL_HINTS"]

#: Where each optional module comes from.
INSTALL_HINTS = {
    "torch": "pip install torch==2.13.0 (CPU build), then pip install 'mer-edge[host]'",
    "onnx": "pip install 'mer-edge[host]'",
    "onnxruntime": "pip install 'mer-edge[host]'",
    "onnxsim": "pip install 'mer-edge[host]' (onnxsim needs Python >= 3.11 on x86_64/aarch64)",
    "onnxslim": "pip install 'mer-edge[host]'",
    "safetensors": "pip install 'mer-edge[host]'",
    "skimage": "pip install 'mer-edge[host]'",
    "cv2": "pip install opencv-python-headless (on a Jetson: apt install python3-opencv)",
    "tensorrt": "on a Jetson: apt install python3-libnvinfer (TensorRT is not installable from PyPI)",
    "cuda": "pip install 'mer-edge[jetson]' (cuda-python)",
    "polygraphy": "pip install 'mer-edge[host]' (or pip install polygraphy)",
    "yaml": "pip install 'mer-edge[host]' (PyYAML; or write the spec file as JSON)",
    "pytriton": "pip install 'mer-edge[fleet]' (nvidia-pytriton)",
    "tritonclient": "pip install 'mer-edge[fleet]'",
    "google": "pip install 'mer-edge[fleet]' (protobuf)",
    "paho": "pip install 'mer-edge[fleet]' (paho-mqtt)",
}


def is_available(name: str) -> bool:
    """True when `name` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require(name: str, *, purpose: Optional[str] = None) -> ModuleType:
    """Import `name` or raise `MissingDependencyError` with the install hint."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        hint = INSTALL_HINTS.get(top, "pip install " + top)
        what = " for " + purpose if purpose else ""
        raise MissingDependencyError(
            f"{name} is needed{what} but cannot be imported ({exc}); install it with: {hint}"
        ) from exc
