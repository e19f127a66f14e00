"""Host-side build steps: checkpoint -> ONNX -> simplified (later FP16/INT8) ONNX -> bundle.

Imports torch, onnx and onnxruntime lazily; never imported by `edge` (the device side).
"""

from __future__ import annotations

__all__ = ["pipeline", "simplify"]
