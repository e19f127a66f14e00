"""FP16 regions in a Q/DQ ONNX, for TensorRT 11's strongly typed networks.

What stays out of INT8 should run in FP16, not FP32 (ModelOpt's default too). TensorRT 8.5 and
10.x get that from the FP16 builder flag that `edge.engine.plan` sets next to INT8, so their ONNX
keeps FP32 outside the Q/DQ pairs. TensorRT 11 has no precision flags: it runs each layer in the
type the ONNX gives it, so the FP16 must be in the file. This step converts every float region
of the INT8 model to FP16 with `quantize.fp16` (the same converter and block list as FP16
builds: LayerNorm and Softmax stay FP32), and keeps FP32 exactly where TensorRT fuses INT8:
the Q/DQ nodes and every node that reads a DequantizeLinear output (INT8 Conv/Gemm/MatMul and
the residual Adds fused into them). At opset <= 17 DequantizeLinear only outputs FP32, so a Cast
separates each INT8 island from its FP16 neighbours.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, List

from edge._lazy import require
from edge.export import validate_onnx
from quantize.fp16 import DEFAULT_KEEP, Fp16Result, _name_nodes, fp16_from_onnx
from quantize.macs import COMPUTE_OPS, TRANSPARENT_OPS

__all__ = ["int8_island_nodes", "fp16_regions", "drop_unused"]

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def int8_island_nodes(model: Any) -> List[str]:
    """Node names that must keep FP32 types for TensorRT to fuse them with their Q/DQ.

    That is the Q/DQ nodes, the shape-only ops between a DequantizeLinear and its consumer, every
    Conv/Gemm/MatMul whose data inputs all come from one (an INT8 kernel), and other readers of
    a DequantizeLinear (residual Adds, pooling) so the Q/DQ still propagates through them. A
    compute node with only one quantized input runs in FP16 instead: it is not INT8 anyway.
    """
    derived = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    keep: List[str] = []
    for node in model.graph.node:  # topological order: a chain is seen front to back
        reads = [name for name in node.input if name in derived]
        if node.op_type in QDQ_OPS:
            keep.append(node.name)
        elif reads and node.op_type in TRANSPARENT_OPS and node.input[0] in derived:
            derived.update(node.output)
            keep.append(node.name)
        elif node.op_type in COMPUTE_OPS:
            data = [name for name in node.input[:2] if name]
            if data and all(name in derived for name in data):
                keep.append(node.name)
        elif reads:
            keep.append(node.name)
    return keep


def fp16_regions(int8_path: Path, out_path: Path, *, opset: int) -> Fp16Result:
    """Rewrite `int8_path` so that everything outside its INT8 islands is FP16; write `out_path`.

    `out_path` may be `int8_path`: the conversion reads the model before it writes.
    """
    onnx = require("onnx", purpose="FP16 regions in an INT8 model")
    model = onnx.load(str(int8_path))
    _name_nodes(model)  # blocking works by node name; quantizers leave some Q/DQ unnamed
    keep = int8_island_nodes(model)
    fd, tmp = tempfile.mkstemp(prefix="mer-edge-int8-", suffix=".onnx")
    os.close(fd)
    try:
        onnx.save(model, tmp)
        result = fp16_from_onnx(
            Path(tmp), Path(out_path), keep_fp32_ops=DEFAULT_KEEP, keep_fp32_nodes=keep,
            opset=opset,
        )  # fmt: skip
    finally:
        os.unlink(tmp)
    converted = onnx.load(str(out_path))
    _restore_qdq_constants(model, converted, onnx)
    validate_onnx(converted, opset=opset, where=f"{out_path} (INT8 with FP16 regions)")
    onnx.save(converted, str(out_path))
    return result


def _restore_qdq_constants(source: Any, converted: Any, onnx: Any) -> None:
    """Point Q/DQ scales back at their exact FP32 initializers.

    The converter turns every float initializer into FP16 and casts it back for blocked nodes;
    for a Q/DQ scale that would round the calibrated scale to FP16 and make it a Cast output,
    which TensorRT rejects (scales must be constants).
    """
    originals = {t.name: t for t in source.graph.initializer}
    by_name = {n.name: n for n in source.graph.node}
    producers = {o: n for n in converted.graph.node for o in n.output}
    present = {t.name for t in converted.graph.initializer}
    for node in converted.graph.node:
        if node.op_type not in QDQ_OPS or node.name not in by_name:
            continue
        original = by_name[node.name]
        for index in range(1, min(len(node.input), len(original.input))):
            cast = producers.get(node.input[index])
            name = original.input[index]
            if cast is None or cast.op_type != "Cast" or name not in originals:
                continue
            exact = name + "__qdq_fp32"
            if exact not in present:
                tensor = onnx.TensorProto()
                tensor.CopyFrom(originals[name])
                tensor.name = exact
                converted.graph.initializer.append(tensor)
                present.add(exact)
            node.input[index] = exact
    drop_unused(converted)


def drop_unused(model: Any) -> None:
    """Remove nodes and initializers nothing reads any more (orphaned Q/DQ, scale casts)."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        keep = [n for n in graph.node if n not in dead]
        del graph.node[:]
        graph.node.extend(keep)
    used = {i for n in graph.node for i in n.input} | outputs
    inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
