"""Test tiers: unit tests need numpy only; `torch` and `ort` tiers skip when their stack is
absent (decided here, never by a module-level import), and device tiers (`trt`, `gpu`) skip
unless TensorRT / a CUDA GPU is present."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


TIERS = {
    "torch": (_has("torch"), "PyTorch not installed (host extra)"),
    "ort": (_has("onnx", "onnxruntime"), "onnx/onnxruntime not installed (host extra)"),
    "trt": (_has("tensorrt"), "TensorRT not installed (Jetson only)"),
    "gpu": (
        shutil.which("nvidia-smi") is not None or Path("/dev/nvhost-ctrl-gpu").exists(),
        "no CUDA GPU on this machine",
    ),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker, (available, reason) in TIERS.items():
            # markers only: a folder named like a tier (tests/trt/) must not skip its tests
            if item.get_closest_marker(marker) is not None and not available:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
