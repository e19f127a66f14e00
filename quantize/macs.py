"""How much of a model TensorRT will run in INT8, FP16 and FP32, counted in multiply-accumulates.

Latency on the CPU stand-in says little about a Jetson; this figure does not depend on the
executor. A Conv, Gemm or MatMul runs in INT8 when its data input and its weight input (both
inputs for an activation MatMul) come from an INT8 `DequantizeLinear`, the pattern TensorRT fuses
into an INT8 kernel. Everything else runs in FP16 when its inputs are float16 in the ONNX (TensorRT
11's strongly typed networks) or when the engine is built with the FP16 flag (8.5 and 10.x, where
`edge.engine.plan` sets INT8 + FP16 for INT8 bundles), and in FP32 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from edge._lazy import require

__all__ = ["COMPUTE_OPS", "MacShares", "NodeMacs", "node_macs", "mac_shares"]

#: The ops whose multiply-accumulates are counted: nearly all of a CNN's or ViT's arithmetic.
COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
#: Ops TensorRT sees through between a DequantizeLinear and the layer that consumes it.
TRANSPARENT_OPS = ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity")

INT8_TYPES = (3,)  # onnx.TensorProto.INT8
FLOAT16 = 10  # onnx.TensorProto.FLOAT16


@dataclass(frozen=True)
class NodeMacs:
    """One compute node: its multiply-accumulates and the precision TensorRT will run it in."""

    node: str
    op_type: str
    macs: int
    precision: str


@dataclass(frozen=True)
class MacShares:
    """Shares of the model's MACs per precision, as the manifest and build summary state them."""

    total_macs: int
    macs: Mapping[str, int]
    nodes: Tuple[NodeMacs, ...]
    fp16_by: str

    def share(self, precision: str) -> float:
        return self.macs.get(precision, 0) / self.total_macs if self.total_macs else 0.0

    def to_dict(self) -> Dict[str, Any]:
        return {
            "total_gmac": round(self.total_macs / 1e9, 4),
            "int8_share": round(self.share("int8"), 4),
            "fp16_share": round(self.share("fp16"), 4),
            "fp32_share": round(self.share("fp32"), 4),
            "fp16_by": self.fp16_by,
            "not_int8": [
                {"node": n.node, "op": n.op_type, "gmac": round(n.macs / 1e9, 4),
                 "precision": n.precision}
                for n in sorted(self.nodes, key=lambda n: -n.macs)
                if n.precision != "int8" and n.macs > 0
            ][:20],
        }  # fmt: skip

    def summary(self) -> str:
        return "{:.1%} INT8, {:.1%} FP16, {:.1%} FP32 of {:.2f} GMAC".format(
            self.share("int8"), self.share("fp16"), self.share("fp32"), self.total_macs / 1e9
        )


def _shapes(model: Any) -> Dict[str, Tuple[int, ...]]:
    """Static shapes of every tensor, with dynamic dimensions (batch) taken as 1."""
    onnx = require("onnx", purpose="counting multiply-accumulates")
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes: Dict[str, Tuple[int, ...]] = {}
    graph = inferred.graph
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor = info.type.tensor_type
        if not tensor.HasField("shape"):
            continue
        shapes[info.name] = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
            for d in tensor.shape.dim
        )
    for init in graph.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    return shapes


def _dtypes(model: Any) -> Dict[str, int]:
    graph = model.graph
    types = {
        info.name: info.type.tensor_type.elem_type
        for info in [*graph.input, *graph.value_info, *graph.output]
    }
    types.update({init.name: init.data_type for init in graph.initializer})
    for node in graph.node:
        if node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to":
                    types[node.output[0]] = attr.i
    return types


def _macs(node: Any, shapes: Mapping[str, Tuple[int, ...]]) -> int:
    """MACs of one compute node at batch 1; 0 when a shape is unknown."""
    out = shapes.get(node.output[0])
    if node.op_type in ("Conv", "ConvTranspose"):
        weight = shapes.get(node.input[1])
        data = shapes.get(node.input[0])
        if out is None or weight is None or data is None:
            return 0
        if node.op_type == "Conv":
            # every output element sums over Cin/group x kernel
            return int(np.prod(out, dtype=np.int64) * np.prod(weight[1:], dtype=np.int64))
        # transposed: every input element scatters over Cout/group x kernel
        return int(np.prod(data, dtype=np.int64) * np.prod(weight[1:], dtype=np.int64))
    if node.op_type in ("Gemm", "MatMul"):
        a = shapes.get(node.input[0])
        if out is None or a is None or not a:
            return 0
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        k = a[-2] if (node.op_type == "Gemm" and trans_a) else a[-1]
        return int(np.prod(out, dtype=np.int64) * k)
    return 0


def _producers(model: Any) -> Dict[str, Any]:
    return {out: node for node in model.graph.node for out in node.output}


def _int8_source(tensor: str, producers: Mapping[str, Any], dtypes: Mapping[str, int]) -> bool:
    """Whether `tensor` is an INT8 DequantizeLinear's output, seen through shape-only ops."""
    seen = 0
    while seen < 8:
        node = producers.get(tensor)
        if node is None:
            return False
        if node.op_type == "DequantizeLinear":
            source = node.input[0]
            if dtypes.get(source) in INT8_TYPES:
                return True
            upstream = producers.get(source)
            if upstream is not None and upstream.op_type == "QuantizeLinear":
                return len(upstream.input) > 2 and dtypes.get(upstream.input[2]) in INT8_TYPES
            return False
        if node.op_type not in TRANSPARENT_OPS:
            return False
        tensor = node.input[0]
        seen += 1
    return False


def _data_inputs(node: Any) -> List[str]:
    """The inputs that must be INT8 for an INT8 kernel: data and weight, never the bias."""
    return [name for name in node.input[:2] if name]


def node_macs(model: Any, *, fp16_flag: bool = False) -> List[NodeMacs]:
    """Every compute node with its MACs and the precision TensorRT will run it in.

    Args:
        fp16_flag: the engine is built with the FP16 builder flag (TensorRT 8.5/10.x INT8 and
            FP16 engines), so layers outside INT8 may run in FP16 whatever the ONNX types say.
    """
    shapes = _shapes(model)
    dtypes = _dtypes(model)
    producers = _producers(model)
    result = []
    for node in model.graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        macs = _macs(node, shapes)
        inputs = _data_inputs(node)
        if inputs and all(_int8_source(t, producers, dtypes) for t in inputs):
            precision = "int8"
        elif fp16_flag or dtypes.get(node.input[0]) == FLOAT16:
            precision = "fp16"
        else:
            precision = "fp32"
        result.append(NodeMacs(node.name, node.op_type, macs, precision))
    return result


def mac_shares(model: Any, *, fp16_flag: bool = False) -> MacShares:
    """Shares of MACs per precision; see `node_macs` for the rule."""
    nodes = node_macs(model, fp16_flag=fp16_flag)
    totals = {"int8": 0, "fp16": 0, "fp32": 0}
    for n in nodes:
        totals[n.precision] += n.macs
    return MacShares(
        total_macs=sum(totals.values()),
        macs=totals,
        nodes=tuple(nodes),
        fp16_by="builder flag" if fp16_flag else "onnx types",
    )
