"""mer-edge device-side package: model specs, bundles, preprocessing and runtimes.

Importing `edge` needs only numpy; torch, onnxruntime, tensorrt and cuda are imported lazily by
the modules that use them, so this package loads on a Jetson's system Python (3.8+).
"""

from __future__ import annotations

from edge.errors import (
    BundleError,
    CheckpointError,
    EdgeBuildError,
    IncompatibleEngineError,
    MissingDependencyError,
    ParityError,
)
from edge.spec import ModelSpec, Preprocessing, TensorSpec

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "BundleError",
    "CheckpointError",
    "EdgeBuildError",
    "IncompatibleEngineError",
    "MissingDependencyError",
    "ModelSpec",
    "ParityError",
    "Preprocessing",
    "TensorSpec",
]
