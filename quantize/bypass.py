"""Take some nodes of an already-quantized model back out of INT8, without re-calibrating.

The placement search (`quantize.sensitivity`) re-quantizes the model for every group it tries,
because that is the model that would ship; each try is a full calibration. To ask only "how much
of the INT8 error is this group's?", it is enough to let the group's nodes read the float
tensors their Q/DQ pairs were quantizing: one evaluation per group instead of one calibration,
so a whole network can be ranked in the time of a few re-quantizations. The other groups keep
their Q/DQ and calibrated ranges exactly as they were. `benchmarks/bench_int8_limits.py` ranks
AFNet-M and FAMNet this way. No quantization library offers this edit, hence this module.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Set

from edge._lazy import require
from quantize.mixed import drop_unused

__all__ = ["bypass_int8"]


def _available(model: Any) -> Set[str]:
    names = {t.name for t in model.graph.initializer} | {i.name for i in model.graph.input}
    return names | {o for n in model.graph.node for o in n.output}


def bypass_int8(quantized: Any, fp32_model: Any, nodes: Iterable[str]) -> Any:
    """A copy of `quantized` in which every node named in `nodes` reads, on each input that a
    DequantizeLinear feeds, the float tensor the FP32 model gives that node there (activation or
    FP32 weight). Q/DQ nodes nothing reads any more are dropped; every other node keeps its INT8
    inputs. Node names are the FP32 model's (quantizers keep them).

    Raises:
        ValueError: the float tensor is missing from both models, or `quantized` holds a
            different tensor under the FP32 weight's name.
    """
    onnx = require("onnx", purpose="editing a quantized model")
    model = onnx.ModelProto()
    model.CopyFrom(quantized)
    fp32_nodes = {n.name: n for n in fp32_model.graph.node}
    fp32_inits = {t.name: t for t in fp32_model.graph.initializer}
    fp32_constants = {
        o: n for n in fp32_model.graph.node if n.op_type == "Constant" for o in n.output
    }
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {t.name: t for t in model.graph.initializer}
    available = _available(model)
    wanted = set(nodes)
    added_constants: List[Any] = []
    for node in model.graph.node:
        if node.name not in wanted or node.name not in fp32_nodes:
            continue
        source = fp32_nodes[node.name]
        for index, tensor in enumerate(node.input):
            producer = producers.get(tensor)
            if producer is None or producer.op_type != "DequantizeLinear":
                continue
            if index >= len(source.input):
                continue
            original = source.input[index]
            if original in fp32_inits:
                if original in inits and inits[original] != fp32_inits[original]:
                    raise ValueError(
                        f"{node.name}: the quantized model holds a different tensor under the "
                        f"FP32 weight's name {original!r}"
                    )
                if original not in available:
                    model.graph.initializer.append(fp32_inits[original])
                    inits[original] = fp32_inits[original]
                    available.add(original)
            elif original not in available:
                if original not in fp32_constants:
                    raise ValueError(
                        f"{node.name}: input {original!r} of the FP32 node is in neither model"
                    )
                added_constants.append(fp32_constants[original])
                available.update(fp32_constants[original].output)
            node.input[index] = original
    if added_constants:
        rest = list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend([*added_constants, *rest])
    drop_unused(model)
    return model
