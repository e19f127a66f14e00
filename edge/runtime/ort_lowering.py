"""Rewrite TensorRT-style Q/DQ so ONNX Runtime's CPU kernels fuse it (host executor only).

TensorRT takes signed INT8 only, so a ReLU output is quantized as `Relu -> Q(int8, zp 0)`.
ONNX Runtime's CPU fusions need the other form: `ReluQuantFusion` drops a ReLU only before a
Q whose zero point is the type's minimum (uint8 0), and only then does `Conv -> Q` become one
`QLinearConv`. Left as is, every such Conv runs in FP32 on weights dequantized at each call, and
the INT8 model is slower than FP32 (all-INT8 demo MMNet on 2 cores: 0.79x of FP32's speed
before this pass, 2.57x after; `benchmarks/bench_quant.py`).

`retype_int8_activations` retypes those Q/DQ pairs to uint8 with the same scale and zero point
0, and every other activation pair to uint8 with zero point 128 (exact). For the ReLU case, on
the calibrated range it is the same grid (`Q_u8(x) == Q_s8(relu(x))` for x <= 127.5 * scale);
above it uint8 saturates at 255 * scale where TensorRT saturates at 127 * scale, so outliers
beyond the calibration maximum are clipped later on the host than on the device. The shipped
model is never changed: the runner lowers a copy in memory and names the rewrite in its
executor string. `edge.runtime.ort_integer` adds the integer kernels for INT8 ops whose output
stays float. No library does this rewrite (onnxruntime's own tooling writes uint8 from the
start, which TensorRT rejects), hence this module.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from edge._lazy import require
from edge.lint.qdq import constants, consumers
from edge.runtime.ort_integer import (
    dequantize_float_weights,
    integer_kernels_for_float_outputs,
)

__all__ = [
    "LOWERING_NOTE",
    "lower_for_cpu",
    "retype_int8_activations",
    "sink_dequantize_below_moves",
]

#: Appended to the executor's name when the runner executed a lowered copy.
LOWERING_NOTE = "int8 Q/DQ lowered for CPU fusion"


def _zero_point(init: Dict[str, Any], node: Any) -> Any:
    if len(node.input) < 3 or node.input[2] not in init:
        return None
    return init[node.input[2]]


def _is_int8_zero(array: Any) -> bool:
    return array is not None and array.dtype == np.int8 and array.size == 1 and not array.any()


def retype_int8_activations(model: Any) -> int:
    """Retype int8 activation Q/DQ to uint8 in place; returns how many Qs changed.

    `Relu -> Q(int8, 0)` becomes `Q(uint8, 0)` (same grid on the calibrated range, see the
    module docstring); any other activation `Q(int8, 0)` becomes `Q(uint8, 128)`, which is
    exact. onnxruntime does the second itself only for a Q with one DQ consumer; NNCF gives a
    DQ to every consumer, and a Conv reading int8 activations is not fused on x86. Only
    per-tensor Qs that feed nothing but DQs are rewritten.
    """
    numpy_helper = require("onnx.numpy_helper", purpose="lowering INT8 Q/DQ for ONNX Runtime CPU")
    graph = model.graph
    init = constants(model)
    producer = {out: node for node in graph.node for out in node.output}
    readers = {name: [node for node, _ in users] for name, users in consumers(model).items()}
    graph_outputs = {o.name for o in graph.output}
    zero_points = {0: "mer_edge_lowering_zp_u8_0", 128: "mer_edge_lowering_zp_u8_128"}
    retyped = set()
    for quant in graph.node:
        if quant.op_type != "QuantizeLinear" or quant.input[0] in init:
            continue
        if not _is_int8_zero(_zero_point(init, quant)) or quant.output[0] in graph_outputs:
            continue
        dequants = readers.get(quant.output[0], [])
        if not dequants or any(
            dq.op_type != "DequantizeLinear" or not _is_int8_zero(_zero_point(init, dq))
            for dq in dequants
        ):
            continue
        relu = producer.get(quant.input[0])
        after_relu = (
            relu is not None
            and relu.op_type == "Relu"
            and relu.output[0] not in graph_outputs
            and len(readers.get(relu.output[0], [])) == 1
        )
        offset = 0 if after_relu else 128
        name = zero_points[offset]
        if name not in init:
            init[name] = np.full((), offset, np.uint8)
            graph.initializer.append(numpy_helper.from_array(init[name], name))
        for node in (quant, *dequants):
            node.input[2] = name
        retyped.add(quant.output[0])
    if retyped:
        used = {name for node in graph.node for name in node.input}
        unused = [t for t in graph.initializer if t.name not in used]
        for tensor in unused:
            graph.initializer.remove(tensor)
        # value_info recorded for the retyped tensors would now contradict them
        keep = [vi for vi in graph.value_info if vi.name not in retyped]
        del graph.value_info[:]
        graph.value_info.extend(keep)
    return len(retyped)


#: Ops that only move values: a per-tensor DequantizeLinear commutes with them exactly.
MOVING_OPS = ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze")
#: Readers ONNX Runtime fuses with a DequantizeLinear into an integer kernel.
QUANTIZED_READERS = ("Gemm", "MatMul", "Conv")


def sink_dequantize_below_moves(model: Any) -> int:
    """`DQ -> Reshape/Transpose -> Gemm` becomes `Reshape/Transpose -> DQ -> Gemm`; returns how many.

    NNCF quantizes a tensor before the shape ops that lead to a Gemm (TensorRT propagates Q/DQ
    through them); ONNX Runtime fuses a DequantizeLinear into QGemm/QLinearMatMul only when it
    feeds the Gemm directly, so those Gemms ran in FP32 on the host. Moving a per-tensor DQ past
    an op that only moves values is exact.
    """
    helper = require("onnx.helper", purpose="lowering INT8 Q/DQ for ONNX Runtime CPU")
    graph = model.graph
    init = constants(model)
    graph_outputs = {o.name for o in graph.output}
    moved = 0
    while True:
        found = _sinkable(graph, init, consumers(model), graph_outputs)
        if found is None:
            break
        dq_at, move_at = found
        dq, move = graph.node[dq_at], graph.node[move_at]
        float_out, quantized = move.output[0], dq.input[0]
        moved_out = float_out + "__cpu_int8"
        new_move = helper.make_node(
            move.op_type, [quantized, *move.input[1:]], [moved_out], name=move.name
        )
        new_move.attribute.extend(move.attribute)
        new_dq = helper.make_node(
            "DequantizeLinear", [moved_out, *dq.input[1:]], [float_out], name=dq.name
        )
        new_dq.attribute.extend(dq.attribute)
        # the move takes the DQ's place and the DQ the move's: topological order holds
        graph.node[dq_at].CopyFrom(new_move)
        graph.node[move_at].CopyFrom(new_dq)
        moved += 1
    return moved


def _sinkable(graph: Any, init: Dict[str, Any], readers, graph_outputs) -> Any:
    """(DQ index, move index) of the first `DQ -> move -> Gemm/MatMul/Conv` chain, else None."""
    position = {node.output[0]: i for i, node in enumerate(graph.node) if node.output}
    for move_at, move in enumerate(graph.node):
        if move.op_type not in MOVING_OPS or move.output[0] in graph_outputs:
            continue
        if any(name and name not in init for name in move.input[1:]):
            continue  # a computed shape might be produced between the two positions
        dq_at = position.get(move.input[0])
        if dq_at is None:
            continue
        dq = graph.node[dq_at]
        if dq.op_type != "DequantizeLinear" or dq.input[0] in init:
            continue
        scale = init.get(dq.input[1]) if len(dq.input) > 1 else None
        if scale is None or scale.size != 1 or len(readers.get(dq.output[0], [])) != 1:
            continue
        after = readers.get(move.output[0], [])
        if after and all(node.op_type in QUANTIZED_READERS + MOVING_OPS for node, _ in after):
            return dq_at, move_at
    return None


def lower_for_cpu(model: Any) -> int:
    """Every rewrite for ONNX Runtime CPU, in place and in order; returns how many nodes changed.

    Retyping first gives the integer kernels uint8 activations; sinking first lets a Gemm read
    its DequantizeLinear directly.
    """
    return (
        retype_int8_activations(model)
        + sink_dequantize_below_moves(model)
        + integer_kernels_for_float_outputs(model)
        + dequantize_float_weights(model)
    )
