"""ONNX lint for TensorRT targets: opset range, operator support, rejected attributes, Q/DQ
legality, Q/DQ placements that block TensorRT's INT8 fusions (warnings) and size, checked on the host before anyone waits for a build on a device.

`lint_onnx(model_or_path, target)` returns findings with node names; `check_qdq(model)` is the
Q/DQ part alone, for the quantization step. Needs `onnx` (host extra) when called, numpy only
at import.
"""

from __future__ import annotations

from edge.lint.check import PROTOBUF_LIMIT, errors, lint_onnx
from edge.lint.findings import ERROR, WARNING, Finding
from edge.lint.placement import check_placement
from edge.lint.qdq import check_qdq
from edge.lint.tables import FAMILIES, RELEASES, ReleaseRules, releases_for

__all__ = [
    "ERROR",
    "FAMILIES",
    "PROTOBUF_LIMIT",
    "RELEASES",
    "WARNING",
    "Finding",
    "ReleaseRules",
    "check_placement",
    "check_qdq",
    "errors",
    "lint_onnx",
    "releases_for",
]
