"""Q/DQ placements TensorRT parses but cannot fuse: legal, and slower than they should be.

INT8 that runs slower than FP16 is the failure NVIDIA's users report most, and it usually comes
from where the Q/DQ pairs sit, not from whether they are legal. These rules follow TensorRT's
Q/DQ placement recommendations (Developer Guide, "Q/DQ Layer-Placement Recommendations") and
ModelOpt's ONNX placement policy:

- quantize the inputs of weighted ops; a Conv/Gemm/MatMul with INT8 weights but a float input
  (or the reverse) is no INT8 kernel, it runs in FP16/FP32 on dequantized weights;
- no Q/DQ between a Conv/Gemm and the activation that follows it: TensorRT fuses
  Conv+activation and quantizes the activation's output;
- on a residual Add, quantize only the residual input: a Q/DQ on the output of the Conv the Add
  would be fused into keeps that Conv's output in INT8 and the Add as a separate layer.

All findings are warnings: the model builds, it just leaves speed on the table.
"""

from __future__ import annotations

from typing import Any, Dict, List

from edge.lint.findings import WARNING, Finding

__all__ = ["check_placement", "WEIGHTED_OPS", "ACTIVATIONS"]

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
ACTIVATIONS = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish")
_TRANSPARENT = ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity")


def _producers(model: Any) -> Dict[str, Any]:
    return {out: node for node in model.graph.node for out in node.output}


def _users(model: Any) -> Dict[str, List[Any]]:
    users: Dict[str, List[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return users


def _through_dq(tensor: str, producers: Dict[str, Any]) -> Any:
    """The DequantizeLinear behind `tensor` (seen through shape-only ops), else None."""
    for _ in range(8):
        node = producers.get(tensor)
        if node is None:
            return None
        if node.op_type == "DequantizeLinear":
            return node
        if node.op_type not in _TRANSPARENT:
            return None
        tensor = node.input[0]
    return None


def _quantized_producer(tensor: str, producers: Dict[str, Any]) -> Any:
    """For a DQ output: the node whose output the Q/DQ pair quantizes, else None."""
    dq = producers.get(tensor)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = producers.get(dq.input[0])
    if q is None or q.op_type != "QuantizeLinear":
        return None
    return producers.get(q.input[0])


def _fusable(node: Any, users: Dict[str, List[Any]]) -> bool:
    """A Conv whose only reader is the next node: TensorRT can fuse an Add into it."""
    return (
        node is not None
        and node.op_type in ("Conv", "ConvTranspose")
        and len(users.get(node.output[0], [])) == 1
    )


def check_placement(model: Any) -> List[Finding]:
    """Warnings for Q/DQ placements that block TensorRT's INT8 fusions (empty: none found)."""
    producers = _producers(model)
    users = _users(model)
    if not any(n.op_type == "QuantizeLinear" for n in model.graph.node):
        return []
    found: List[Finding] = []
    for node in model.graph.node:
        if node.op_type in WEIGHTED_OPS and len(node.input) >= 2:
            data, weight = (_through_dq(t, producers) is not None for t in node.input[:2])
            if data != weight:
                found.append(
                    Finding(
                        "qdq-partial",
                        WARNING,
                        "only its {} is quantized: no INT8 kernel, it runs in FP16/FP32; "
                        "quantize both inputs or neither".format("weight" if weight else "input"),
                        node.name,
                        node.op_type,
                    )
                )
        if node.op_type in ACTIVATIONS and node.input:
            source = _quantized_producer(node.input[0], producers)
            if source is not None and source.op_type in WEIGHTED_OPS:
                found.append(
                    Finding(
                        "qdq-before-activation",
                        WARNING,
                        f"Q/DQ between {source.name!r} and this activation blocks their fusion; "
                        "quantize the activation's output instead",
                        node.name,
                        node.op_type,
                    )
                )
        if node.op_type == "Add" and len(node.input) == 2:
            direct = [producers.get(t) for t in node.input]
            if any(_fusable(p, users) for p in direct):
                continue  # one branch already fuses into its Conv
            behind_qdq = [_quantized_producer(t, producers) for t in node.input]
            fusable = [p for p in behind_qdq if _fusable(p, users)]
            if fusable:
                found.append(
                    Finding(
                        "qdq-residual",
                        WARNING,
                        f"Q/DQ on the output of {fusable[-1].name!r}, which this Add could be "
                        "fused into; quantize only the residual input",
                        node.name,
                        node.op_type,
                    )
                )
    return found
