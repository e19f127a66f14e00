"""Integer kernels for INT8 Conv/Gemm/MatMul whose output stays float (host executor only).

TensorRT runs `DQ(x_int8), DQ(W_int8) -> Conv` as int8 x int8 products summed in int32, then
scaled to a float output, also when no Q/DQ follows: a Conv whose output a residual Add fuses
into, a ViT MLP Gemm that feeds a GELU, a classifier whose logits are the output. ONNX Runtime's
CPU fusions only build an integer kernel (QLinearConv, QGemm) when a QuantizeLinear follows, so
it ran those in FP32 on weights dequantized at every call. This pass gives them the arithmetic
TensorRT uses, in ONNX Runtime's own `com.microsoft.MatMulIntegerToFloat(x_q, W_q, x_scale,
w_scale, x_zp, w_zp, bias)`: an int32 accumulator scaled to float, per-column weight scales.
A Gemm or MatMul maps onto it directly; a 1x1 Conv (MMNet's residual-branch convs) is the same
product over channels, taken channels last between two Transposes that ONNX Runtime's layout
pass cancels against its own NHWC integer convolutions. Other Conv shapes stay float:
ONNX Runtime's `ConvInteger` kernel measured 3x slower than its float Conv on MMNet's.

The integer sums are exact; what differs from the unlowered graph's float Conv on dequantized
values is float rounding only. No library offers this rewrite (onnxruntime's quantizer writes
these ops from a float model, not from a TensorRT-shaped Q/DQ one), hence this module.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge._lazy import require
from edge.lint.qdq import constants, consumers, producers

__all__ = [
    "MS_DOMAIN",
    "dequantize_float_weights",
    "integer_kernels_for_float_outputs",
]

MS_DOMAIN = "com.microsoft"
#: (activation, weight) integer types ONNX Runtime's CPU MatMulIntegerToFloat kernel accepts.
MATMUL_TYPES = {(np.uint8, np.int8), (np.uint8, np.uint8), (np.int8, np.int8)}
INTEGER_TYPES = (np.int8, np.uint8)


def _attr(node: Any, name: str, default: Any) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            return attr.f if attr.type == attr.FLOAT else attr.i
    return default


class _Quantized:
    """One DequantizeLinear input: integer tensor name, scale and zero point arrays."""

    def __init__(self, dq: Any, init: Dict[str, np.ndarray]) -> None:
        self.node = dq
        self.tensor = dq.input[0]
        self.scale = init.get(dq.input[1])
        self.zero_point = init.get(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
        self.axis = _attr(dq, "axis", 1)


def _dequantized(
    name: str, producer: Dict[str, Any], init: Dict[str, np.ndarray]
) -> Optional[_Quantized]:
    dq = producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear" or dq.input[1] not in init:
        return None
    if _attr(dq, "block_size", 0):
        return None
    quantized = _Quantized(dq, init)
    if quantized.zero_point is None or quantized.zero_point.dtype.type not in INTEGER_TYPES:
        return None  # a DQ without a zero point reads uint8; rare enough to leave in float
    return quantized


def _requantized(output: str, readers, init: Dict[str, np.ndarray]) -> bool:
    """True when ONNX Runtime fuses this op with the Q after it into a QLinear kernel itself."""
    users = [node for node, _ in readers.get(output, [])]
    if len(users) != 1:
        return False
    (user,) = users
    if user.op_type == "QuantizeLinear":
        return True
    if user.op_type != "Relu":
        return False
    after = [node for node, _ in readers.get(user.output[0], [])]
    # ReluQuantFusion drops a ReLU before a uint8 Q with zero point 0 (retype_int8_activations)
    return (
        len(after) == 1
        and after[0].op_type == "QuantizeLinear"
        and len(after[0].input) > 2
        and after[0].input[2] in init
        and init[after[0].input[2]].dtype == np.uint8
        and not init[after[0].input[2]].any()
    )


def _per_tensor(q: _Quantized) -> bool:
    return q.scale is not None and q.scale.size == 1 and q.zero_point.size == 1


class _Builder:
    """Makes nodes and appends initializers under names not yet taken."""

    def __init__(self, model: Any, init: Dict[str, np.ndarray]) -> None:
        self.helper = require("onnx.helper", purpose="lowering INT8 Q/DQ for ONNX Runtime CPU")
        self.numpy_helper = require("onnx.numpy_helper", purpose="lowering INT8 Q/DQ")
        self.graph = model.graph
        self.init = init

    def constant(self, base: str, value: np.ndarray) -> str:
        name, index = base, 0
        while name in self.init:
            index += 1
            name = f"{base}_{index}"
        self.init[name] = value
        self.graph.initializer.append(self.numpy_helper.from_array(value, name))
        return name


def _weight_for_matmul(
    node: Any, w: _Quantized, init: Dict[str, np.ndarray]
) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(W_q as [K, N], per-column scale [N] or scalar, zero point) for a Gemm/MatMul, else None."""
    weight = init.get(w.tensor)
    if weight is None or weight.ndim != 2:
        return None
    trans_b = node.op_type == "Gemm" and _attr(node, "transB", 0)
    n_axis = 0 if trans_b else 1
    if w.scale.size > 1 and (w.axis % 2 != n_axis or w.scale.size != weight.shape[n_axis]):
        return None
    if w.zero_point.size not in (1, w.scale.size):
        return None
    if trans_b:
        weight = np.ascontiguousarray(weight.T)
    return weight, w.scale.reshape(-1), w.zero_point.reshape(-1)


def _matmul_integer(node: Any, x: _Quantized, w: _Quantized, build: _Builder) -> Optional[list]:
    init = build.init
    if node.op_type == "Gemm":
        if _attr(node, "transA", 0) or _attr(node, "alpha", 1.0) != 1.0:
            return None
        if len(node.input) > 2 and node.input[2] and _attr(node, "beta", 1.0) != 1.0:
            return None
    weight = _weight_for_matmul(node, w, init)
    if weight is None:
        return None
    w_q, w_scale, w_zp = weight
    if (x.zero_point.dtype.type, w_q.dtype.type) not in MATMUL_TYPES:
        return None
    n = w_q.shape[1]
    inputs = [
        x.tensor,
        build.constant(f"{w.tensor}__kn", w_q) if w_q is not init[w.tensor] else w.tensor,
        x.node.input[1],
        build.constant(f"{node.name}__w_scale", w_scale.astype(np.float32)),
        x.node.input[2],
        build.constant(f"{node.name}__w_zp", w_zp),
    ]
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
        bias = init.get(node.input[2])
        if bias is None or bias.size not in (1, n):
            return None
        inputs.append(build.constant(f"{node.name}__bias", np.broadcast_to(bias.reshape(-1), (n,))
                                     .astype(np.float32)))  # fmt: skip
    return [
        build.helper.make_node(
            "MatMulIntegerToFloat",
            inputs,
            [node.output[0]],
            name=f"{node.name}__integer",
            domain=MS_DOMAIN,
        )
    ]


def _pointwise_conv(node: Any, x: _Quantized, w: _Quantized, build: _Builder) -> Optional[list]:
    """A 1x1 Conv (stride 1, no padding, one group) as a MatMul over channels, channels last."""
    init, helper = build.init, build.helper
    weight = init.get(w.tensor)
    if weight is None or weight.ndim != 4 or weight.shape[2:] != (1, 1):
        return None
    if (
        _attr(node, "group", 1) != 1
        or any(_ints(node, "strides", 1))
        or any(_ints(node, "pads", 0))
    ):
        return None
    if any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET", b"VALID") for a in node.attribute):
        return None
    channels = weight.shape[0]
    if w.scale.size > 1 and (w.axis % 4 != 0 or w.scale.size != channels):
        return None
    if w.zero_point.size not in (1, channels):
        return None
    w_q = np.ascontiguousarray(weight.reshape(channels, -1).T)  # [C_in, C_out]
    if (x.zero_point.dtype.type, w_q.dtype.type) not in MATMUL_TYPES:
        return None
    inputs = [
        f"{node.output[0]}__nhwc_q",
        build.constant(f"{w.tensor}__kn", w_q),
        x.node.input[1],
        build.constant(f"{node.name}__w_scale", w.scale.reshape(-1).astype(np.float32)),
        x.node.input[2],
        build.constant(f"{node.name}__w_zp", w.zero_point.reshape(-1)),
    ]
    if len(node.input) > 2 and node.input[2]:
        bias = init.get(node.input[2])
        if bias is None or bias.size != channels:
            return None
        inputs.append(build.constant(f"{node.name}__bias", bias.astype(np.float32).reshape(-1)))
    stem = node.name or node.output[0]
    return [
        helper.make_node(
            "Transpose", [x.tensor], [inputs[0]], name=f"{stem}__to_nhwc", perm=[0, 2, 3, 1]
        ),  # fmt: skip
        helper.make_node(
            "MatMulIntegerToFloat",
            inputs,
            [f"{node.output[0]}__nhwc"],
            name=f"{stem}__integer",
            domain=MS_DOMAIN,
        ),
        helper.make_node(
            "Transpose",
            [f"{node.output[0]}__nhwc"],
            [node.output[0]],
            name=f"{stem}__to_nchw",
            perm=[0, 3, 1, 2],
        ),  # fmt: skip
    ]


def _ints(node: Any, name: str, neutral: int) -> List[int]:
    """An int-list attribute minus its neutral value: empty when it does nothing."""
    for attr in node.attribute:
        if attr.name == name:
            return [v - neutral for v in attr.ints if v != neutral]
    return []


def _drop_dead(model: Any, candidates: List[Any]) -> None:
    """Remove `candidates` (DequantizeLinear nodes) nobody reads any more, and orphaned constants."""
    graph = model.graph
    readers = consumers(model)
    outputs = {o.name for o in graph.output}
    dead = {
        id(n): n for n in candidates if n.output[0] not in readers and n.output[0] not in outputs
    }
    for node in dead.values():
        graph.node.remove(node)
    # a constant also listed as a graph input (IR < 4) stays: removing it would make it a feed
    used = {name for node in graph.node for name in node.input} | outputs
    used |= {i.name for i in graph.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)


def integer_kernels_for_float_outputs(model: Any) -> int:
    """INT8 Conv/Gemm/MatMul with float outputs onto integer kernels, in place; returns how many.

    Only ops whose data input comes from a per-tensor DequantizeLinear of a computed tensor and
    whose weight from a DequantizeLinear of a constant are touched, and only when no Q follows
    (ONNX Runtime fuses those itself).
    """
    graph = model.graph
    init = constants(model)
    producer = producers(model)
    readers = consumers(model)
    build = _Builder(model, init)
    rewritten: List[Tuple[Any, list]] = []
    orphans: List[Any] = []
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        x = _dequantized(node.input[0], producer, init)
        w = _dequantized(node.input[1], producer, init)
        if x is None or w is None or x.tensor in init or w.tensor not in init:
            continue
        if not _per_tensor(x) or _requantized(node.output[0], readers, init):
            continue
        if node.op_type == "Conv":
            replacement = _pointwise_conv(node, x, w, build)
        else:
            replacement = _matmul_integer(node, x, w, build)
        if replacement is not None:
            rewritten.append((node, replacement))
            orphans += [x.node, w.node]
    _replace(model, rewritten)
    _drop_dead(model, orphans)
    return len(rewritten)


def _replace(model: Any, rewritten: List[Tuple[Any, list]]) -> None:
    """Put each node's replacement where it stood (inputs are all written before it)."""
    graph = model.graph
    uses_ms = any(new.domain == MS_DOMAIN for _, nodes in rewritten for new in nodes)
    if uses_ms and not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(
            require("onnx.helper", purpose="lowering INT8 Q/DQ").make_opsetid(MS_DOMAIN, 1)
        )
    for node, nodes in rewritten:
        at = list(graph.node).index(node)
        graph.node.remove(node)
        for offset, new in enumerate(nodes):
            graph.node.insert(at + offset, new)


#: Weighted ops whose constant weight DequantizeLinear ONNX Runtime fuses only before a Q.
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def dequantize_float_weights(model: Any) -> int:
    """Constant weights of weighted ops that run in float, dequantized once here; returns how many.

    ONNX Runtime never constant-folds a DequantizeLinear (its QDQ fusions need it), so a Conv
    it cannot fuse, such as a 3x3 Conv into a residual Add or a Conv3d, dequantized its weights
    at every call. `(q - zero_point) * scale` in float32 here is the same single rounding as the
    kernel's, so the weights are the same bits; only weights whose every reader stays float
    are touched.
    """
    numpy_helper = require("onnx.numpy_helper", purpose="lowering INT8 Q/DQ for ONNX Runtime CPU")
    graph = model.graph
    init = constants(model)
    readers = consumers(model)
    producer = producers(model)
    outputs = {o.name for o in graph.output}
    folded = []
    for dq in graph.node:
        if dq.op_type != "DequantizeLinear" or dq.output[0] in outputs:
            continue
        weight = _dequantized(dq.output[0], producer, init)
        if weight is None or weight.tensor not in init or weight.scale is None:
            continue
        users = readers.get(dq.output[0], [])
        if not users or any(
            user.op_type not in WEIGHTED_OPS
            or index != 1
            or _requantized(user.output[0], readers, init)
            for user, index in users
        ):
            continue
        q = init[weight.tensor]
        shape = [1] * q.ndim
        if weight.scale.size > 1:
            shape[weight.axis % q.ndim] = -1
        values = (q.astype(np.int32) - weight.zero_point.reshape(shape).astype(np.int32)).astype(
            np.float32
        ) * weight.scale.reshape(shape).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(values, dq.output[0]))
        folded.append(dq)
    for dq in folded:
        graph.node.remove(dq)
    _drop_dead(model, [])
    return len(folded)
