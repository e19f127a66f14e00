"""One exception family for every user-facing failure.

The CLIs catch `EdgeBuildError` and print its message as a one-line reason with a non-zero
exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "EdgeBuildError",
    "UsageError",
    "MissingDependencyError",
    "CheckpointError",
    "ExportError",
    "ParityError",
    "BundleError",
    "IncompatibleEngineError",
    "CalibrationError",
    "AnnotationFixMismatch",
]


class EdgeBuildError(Exception):
    """Base class: the message says what went wrong and how to fix it."""


class UsageError(EdgeBuildError):
    """Arguments that cannot work together; found before any work starts (CLI exit code 2)."""


class MissingDependencyError(EdgeBuildError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


class CheckpointError(EdgeBuildError):
    """A checkpoint cannot be read or does not fit the architecture."""


class ExportError(EdgeBuildError):
    """torch -> ONNX export or ONNX validation failed."""


class ParityError(EdgeBuildError):
    """Two executions of the same model disagree beyond the tolerance."""


class BundleError(EdgeBuildError):
    """A bundle directory is missing, incomplete or altered."""


class IncompatibleEngineError(BundleError):
    """An engine was built for another TensorRT version or device."""


class CalibrationError(EdgeBuildError):
    """Calibration data is empty, malformed or unusable."""


class AnnotationFixMismatch(EdgeBuildError):
    """A declared annotation fix does not match the spreadsheet it targets."""
