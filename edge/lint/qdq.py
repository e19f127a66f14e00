"""Q/DQ legality for TensorRT: what an INT8 ONNX must look like to be parsed as intended.

Rules (onnx-tensorrt docs/operators.md, NVIDIA/TensorRT #2774, onnx-tensorrt #764/#994):
symmetric quantization (zero point all 0), INT8 not UINT8 (a QuantizeLinear without a zero
point outputs UINT8), positive scales, and per-channel weight scales on the output-channel axis:
0 for Conv weights, 1 for ConvTranspose, 0 or 1 for Gemm by `transB`, the last axis for MatMul.
The quantization step imports `check_qdq` to verify its own output.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge._lazy import require
from edge.lint.findings import ERROR, WARNING, Finding

__all__ = ["check_qdq", "output_channel_axis", "constants", "consumers", "QDQ_OPS"]

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def constants(model: Any) -> Dict[str, np.ndarray]:
    """Initializers and Constant-node outputs by tensor name, as numpy arrays."""
    numpy_helper = require("onnx.numpy_helper", purpose="linting ONNX models")
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def producers(model: Any) -> Dict[str, Any]:
    """The node writing each tensor."""
    return {out: node for node in model.graph.node for out in node.output}


def consumers(model: Any) -> Dict[str, List[Tuple[Any, int]]]:
    """(node, input index) pairs reading each tensor."""
    users: Dict[str, List[Tuple[Any, int]]] = {}
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            users.setdefault(name, []).append((node, index))
    return users


def _attr(node: Any, name: str, default: Any) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            return attr.i if attr.type == attr.INT else attr
    return default


def output_channel_axis(consumer: Any, index: int, rank: int) -> Optional[int]:
    """The output-channel axis of the weight `consumer` reads at input `index`, else None."""
    if index != 1:
        return None
    if consumer.op_type == "Conv":
        return 0
    if consumer.op_type == "ConvTranspose":
        return 1
    if consumer.op_type == "Gemm":
        return 0 if _attr(consumer, "transB", 0) else 1
    if consumer.op_type == "MatMul":
        return rank - 1
    return None


def _check_zero_point(node: Any, const: Dict[str, np.ndarray]) -> List[Finding]:
    found = []
    has_zp = len(node.input) > 2 and node.input[2]
    if not has_zp:
        if node.op_type == "QuantizeLinear":
            found.append(
                Finding(
                    "qdq-uint8",
                    ERROR,
                    "QuantizeLinear without a zero point outputs UINT8; "
                    "TensorRT needs INT8 with an explicit zero point 0",
                    node.name,
                    node.op_type,
                )
            )
        return found
    zero_point = const.get(node.input[2])
    if zero_point is None:
        found.append(
            Finding(
                "qdq-zero-point",
                ERROR,
                f"zero point {node.input[2]!r} is not a constant; "
                "TensorRT needs a constant zero point 0",
                node.name,
                node.op_type,
            )
        )
        return found
    if zero_point.dtype == np.uint8:
        found.append(
            Finding(
                "qdq-uint8",
                ERROR,
                "UINT8 zero point: TensorRT quantizes to INT8 only (rewrite UINT8 Q/DQ to INT8)",
                node.name,
                node.op_type,
            )
        )
    if np.any(zero_point != 0):
        found.append(
            Finding(
                "qdq-zero-point",
                ERROR,
                "zero point is not 0: TensorRT supports only symmetric quantization",
                node.name,
                node.op_type,
            )
        )
    return found


def _check_axis(node: Any, scale: np.ndarray, const, users) -> List[Finding]:
    if scale.size <= 1:
        return []
    data = const.get(node.input[0])
    if data is None:
        return [
            Finding(
                "qdq-per-channel-activation",
                WARNING,
                "per-channel scale on an activation; TensorRT quantizes activations per tensor",
                node.name,
                node.op_type,
            )
        ]
    rank = data.ndim
    axis = int(_attr(node, "axis", 1))
    axis = axis + rank if axis < 0 else axis
    targets = list(users.get(node.output[0], []))
    if node.op_type == "QuantizeLinear":
        targets = [
            pair
            for dq, _ in targets
            if dq.op_type == "DequantizeLinear"
            for pair in users.get(dq.output[0], [])
        ]
    found = []
    for consumer, index in targets:
        want = output_channel_axis(consumer, index, rank)
        if want is not None and want != axis:
            found.append(
                Finding(
                    "qdq-axis",
                    ERROR,
                    f"per-channel axis {axis} on the weight of {consumer.op_type} "
                    f"{consumer.name!r}; the output-channel axis is {want}",
                    node.name,
                    node.op_type,
                )
            )
    return found


def check_qdq(model: Any) -> List[Finding]:
    """Findings for every Q/DQ node TensorRT would reject or misread (empty: legal)."""
    const = constants(model)
    users = consumers(model)
    found: List[Finding] = []
    for node in model.graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        found.extend(_check_zero_point(node, const))
        data = const.get(node.input[0])
        if node.op_type == "DequantizeLinear" and data is not None and data.dtype == np.uint8:
            found.append(
                Finding(
                    "qdq-uint8",
                    ERROR,
                    "DequantizeLinear reads UINT8 data; TensorRT needs INT8",
                    node.name,
                    node.op_type,
                )
            )
        scale = const.get(node.input[1]) if len(node.input) > 1 else None
        if scale is None:
            found.append(
                Finding("qdq-scale", ERROR, "scale is not a constant", node.name, node.op_type)
            )
            continue
        if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
            found.append(
                Finding(
                    "qdq-scale", ERROR, "scale must be positive and finite", node.name, node.op_type
                )
            )
        found.extend(_check_axis(node, scale, const, users))
    return found
