"""FP16 ONNX with FP32 inputs/outputs, numerically sensitive ops kept in FP32.

Why a converted ONNX and not only the FP16 builder flag: TensorRT 11 has no precision flags
(strongly typed networks only), so FP16 must be in the ONNX itself. On TensorRT 8.5/10.x the
FP32 ONNX plus `--fp16` also works; this file is then an alternative, not a requirement.

Converter: onnxconverter-common's `float16.convert_float_to_float16` (maintained by the ONNX
project, pure Python; 1.16.0 installs beside numpy 2.x, onnx 1.23, onnxruntime 1.31 and
protobuf 7 without changing a pin). Its known pitfalls are handled around the call:

- its default block list (Resize, Range, Min, Max, TopK, ...) is always kept, so Resize's
  `scales`/`sizes` and Range's bounds stay in their ONNX-required types;
- float `Constant` nodes become initializers first, so a constant that feeds only blocked
  nodes stays FP32 instead of being rounded to FP16 and cast back;
- a float initializer shared by a blocked and a converted node is duplicated (the converter
  would otherwise leave one consumer with the wrong type);
- existing `Cast(to=FLOAT)` nodes are kept FP32 (the converter would relabel their outputs
  FP16 while the node still produces FP32);
- initializer values outside FP16's range are clamped to +-65504 or raised to the smallest
  subnormal (2**-24), and every clamped tensor is reported with a count;
- the result must pass `onnx.checker` with full type inference at the input's opset.

A decomposed LayerNorm (opset 16 for TensorRT 8.5: ReduceMean, Sub, Pow, ReduceMean, Add,
Sqrt, Div) counts as `LayerNormalization`: its chain is found by pattern and kept FP32, because
`Pow` of a residual stream overflows FP16 (onnxsim's Orin-Nano ViT-B report: 19% top-1 in FP16).

Measured on the demo MMNet (target 10, opset 17), ONNX Runtime 1.31.1 CPU, 150 synthetic
validation clips (seed 0, disjoint from calibration), FP16 vs the FP32 ONNX; logits reach
|5.7|, median top-1 margin 1.17:

    kept in FP32 (besides the converter's defaults)     top-1 agr.  max |err|  mean |err|
    nothing                                             100.00%     1.05e-02   2.50e-03
    LayerNormalization + Softmax (DEFAULT_KEEP)         100.00%     1.04e-02   2.50e-03
    + ReduceMean/ReduceMax (channel attention)          100.00%     1.37e-02   2.77e-03
    + /main_branch/Add, Flatten, fc Gemm (100,352 wide) 100.00%     1.38e-02   2.82e-03

On the bundle's 40-clip demo split agreement is 100% (opset 16 and 17). On 1,000 fresh
synthetic clips (`bench_fp16 --samples 1000`, DEFAULT_KEEP) it is 99.80%: 2 flips, max |err|
1.85e-02, accuracy 66.8% in both precisions, i.e. the issue's 99.9% is missed there; which
clips flip, and whether they are near-ties, was not yet examined.

The error comes from FP16 weights and activations across the whole network, not from any
one op: no block list changed agreement, and keeping the reductions or the final Gemm in
FP32 made the error larger, not smaller (each kept op adds an FP16 -> FP32 -> FP16 Cast
round trip, i.e. one more rounding of its output). No MMNet activation overflowed in the
FP16 reference run below (only the harmless exp inside Sigmoid), so `DEFAULT_KEEP` is
LayerNorm and Softmax: the
ops with a known FP16 overflow mode (sum of squares, exp) that cost nothing measurable here
and protect other checkpoints and the opset-16 decomposition. The ModelSpec precision hints
are not applied by default for FP16 (the table shows they buy nothing); they are name
prefixes, so expand them to node names and pass those as `keep_fp32_nodes` to keep them. `benchmarks/bench_fp16.py` re-measures this table.

Caveat on the executor: ONNX Runtime's CPU provider has FP16 kernels for few ops on x86; it
runs the rest in FP32 and removes the FP16 -> FP32 Cast pairs it inserts, so the table mostly
measures FP16 *weights*, not FP16 arithmetic. It cannot show an FP16 overflow at all (the
tests use ONNX's numpy `ReferenceEvaluator`, which computes in FP16, for that). Run through
that evaluator (FP16 arithmetic throughout, ~2 min per clip, so 3 validation clips only), the
same FP16 MMNet keeps top-1 on all 3 with max |err| 8.1e-02 (ORT CPU: ~1e-2): real FP16 error
is several times the ORT figure, still far below the 1.17 median top-1 margin. TensorRT on
the Jetson computes FP16 for real; re-measure there with the bundle's validation set.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from edge._lazy import require
from edge.errors import ExportError
from edge.export import validate_onnx
from edge.lint.qdq import consumers, producers

__all__ = [
    "CONVERTER",
    "DEFAULT_KEEP",
    "FP16_MAX",
    "FP16_MIN_SUBNORMAL",
    "Fp16Result",
    "KeptNode",
    "decomposed_layernorm_nodes",
    "fp16_from_onnx",
]

log = logging.getLogger(__name__)

CONVERTER = "onnxconverter-common"
#: Ops kept in FP32 by default; the measurement behind it is in the module docstring.
DEFAULT_KEEP: Tuple[str, ...] = ("LayerNormalization", "Softmax")
FP16_MAX = 65504.0
FP16_MIN_SUBNORMAL = 2.0**-24

_REASONS = {
    "LayerNormalization": "sum of squares over the hidden size overflows FP16",
    "Softmax": "exp of large logits overflows FP16",
}
_DECOMPOSED_LN = (
    "decomposed LayerNormalization (opset 16): Pow of the residual stream overflows FP16"
)
_CONVERTER_DEFAULT = (
    "converter default: needs FP32 inputs (e.g. Resize scales) or has no FP16 kernel"
)
_SOURCE_CAST = "Cast to FP32 in the source graph (the converter would mistype its output)"
_USER_NODE = "requested with keep_fp32_nodes"


@dataclass(frozen=True)
class KeptNode:
    """One node that stays FP32, and why."""

    name: str
    op_type: str
    reason: str

    def to_dict(self) -> Dict[str, str]:
        return {"name": self.name, "op_type": self.op_type, "reason": self.reason}


@dataclass(frozen=True)
class Fp16Result:
    """What the conversion did, for the manifest."""

    source: str
    path: str
    opset: int
    converter_version: str
    keep_fp32_ops: Tuple[str, ...]
    kept_nodes: Tuple[KeptNode, ...]
    clamped: Dict[str, Dict[str, int]] = field(default_factory=dict)
    casts_added: int = 0
    nodes_before: int = 0
    nodes_after: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return {
            "converter": CONVERTER,
            "converter_version": self.converter_version,
            "function": "onnxconverter_common.float16.convert_float_to_float16",
            "keep_io_types": True,
            "source": self.source,
            "path": self.path,
            "opset": self.opset,
            "keep_fp32_ops": list(self.keep_fp32_ops),
            "kept_fp32_nodes": [k.to_dict() for k in self.kept_nodes],
            "clamped_initializers": {k: dict(v) for k, v in self.clamped.items()},
            "casts_added": self.casts_added,
            "nodes_before": self.nodes_before,
            "nodes_after": self.nodes_after,
        }


def _consumer_nodes(model: Any) -> Dict[str, List[Any]]:
    """The nodes reading each tensor (the Q/DQ lint's index, without input positions)."""
    return {name: [node for node, _ in pairs] for name, pairs in consumers(model).items()}


def _only(nodes: Sequence[Any], op_type: str) -> Optional[Any]:
    matches = [n for n in nodes if n.op_type == op_type]
    return matches[0] if len(matches) == 1 else None


def decomposed_layernorm_nodes(model: Any) -> List[List[str]]:
    """Node names of each LayerNorm exported as ReduceMean-Sub-Pow-ReduceMean-Add-Sqrt-Div.

    Matched from the `Pow` outward, so an unrelated ReduceMean (channel attention) is never
    caught. Returns one list of seven names per LayerNorm found.
    """
    graph = model.graph
    producer = producers(model)
    consumer = _consumer_nodes(model)
    chains = []
    for pow_node in graph.node:
        if pow_node.op_type != "Pow":
            continue
        sub = producer.get(pow_node.input[0])
        if sub is None or sub.op_type != "Sub":
            continue
        mean = producer.get(sub.input[1])
        if mean is None or mean.op_type != "ReduceMean" or mean.input[0] != sub.input[0]:
            continue
        var = _only(consumer.get(pow_node.output[0], []), "ReduceMean")
        add = var and _only(consumer.get(var.output[0], []), "Add")
        sqrt = add and _only(consumer.get(add.output[0], []), "Sqrt")
        div = sqrt and _only(consumer.get(sqrt.output[0], []), "Div")
        if div is None or div.input[0] != sub.output[0]:
            continue
        chains.append([n.name for n in (mean, sub, pow_node, var, add, sqrt, div)])
    return chains


def _constants_to_initializers(model: Any, onnx: Any) -> None:
    """Float `Constant` nodes become initializers, so blocked consumers keep them FP32."""
    graph = model.graph
    keep = []
    moved = set()
    for node in graph.node:
        attrs = {a.name: a for a in node.attribute}
        value = attrs.get("value")
        if (
            node.op_type == "Constant"
            and len(attrs) == 1
            and value is not None
            and value.t.data_type == onnx.TensorProto.FLOAT
        ):
            tensor = onnx.TensorProto()
            tensor.CopyFrom(value.t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
            moved.add(tensor.name)
        else:
            keep.append(node)
    if moved:
        del graph.node[:]
        graph.node.extend(keep)
        # stale value_info would make the converter relabel (and cast) the now-FP32 initializer
        infos = [v for v in graph.value_info if v.name not in moved]
        del graph.value_info[:]
        graph.value_info.extend(infos)


def _split_shared_initializers(model: Any, blocked: Set[str], onnx: Any) -> None:
    """Give blocked consumers their own copy of a float initializer converted nodes also read."""
    graph = model.graph
    floats = {t.name: t for t in graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    users = _consumer_nodes(model)
    for name, tensor in floats.items():
        nodes = users.get(name, [])
        kept = [n for n in nodes if n.name in blocked]
        if not kept or len(kept) == len(nodes):
            continue
        copy_name = name + "__fp32"
        copy = onnx.TensorProto()
        copy.CopyFrom(tensor)
        copy.name = copy_name
        graph.initializer.append(copy)
        for node in kept:
            for i, inp in enumerate(node.input):
                if inp == name:
                    node.input[i] = copy_name


def _clamp_report(model: Any, blocked: Set[str], onnx: Any) -> Dict[str, Dict[str, int]]:
    """Count initializer values FP16 cannot hold, in the tensors that will be converted."""
    numpy_helper = onnx.numpy_helper
    stays_fp32 = {inp for node in model.graph.node if node.name in blocked for inp in node.input}
    report: Dict[str, Dict[str, int]] = {}
    for tensor in model.graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT or tensor.name in stays_fp32:
            continue
        values = np.abs(numpy_helper.to_array(tensor))
        finite = np.isfinite(values)
        over = int(np.count_nonzero(finite & (values > FP16_MAX)))
        under = int(np.count_nonzero((values > 0) & (values < FP16_MIN_SUBNORMAL)))
        if over or under:
            report[tensor.name] = {"above_fp16_max": over, "below_fp16_subnormal": under}
    return report


def _drop_cast_round_trips(model: Any, onnx: Any) -> int:
    """Remove FP32 -> FP16 -> FP32 Cast pairs between two kept nodes; returns how many.

    The converter casts each kept node's output to FP16 and each kept node's input back to
    FP32; where one kept node feeds several kept nodes (the `Sub` of a decomposed LayerNorm
    feeds `Pow` and `Div`) its clean-up misses the pair and the FP32 chain would be rounded.
    """
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in list(inferred.graph.value_info) + list(inferred.graph.input)
    }
    outputs = {o.name for o in graph.output}
    to_float = onnx.TensorProto.FLOAT
    removed = 0
    while True:
        users = _consumer_nodes(model)
        drop: Set[int] = set()
        rename: Dict[str, str] = {}
        for node in graph.node:
            if node.op_type != "Cast" or _cast_to(node) != onnx.TensorProto.FLOAT16:
                continue
            if types.get(node.input[0]) != to_float or node.output[0] in outputs:
                continue
            back = [
                k
                for k in users.get(node.output[0], [])
                if k.op_type == "Cast" and _cast_to(k) == to_float and k.output[0] not in outputs
            ]
            for cast in back:
                rename[cast.output[0]] = node.input[0]
                drop.add(id(cast))
            if len(back) == len(users.get(node.output[0], [])):
                drop.add(id(node))
        if not drop:
            return removed
        keep = [n for n in graph.node if id(n) not in drop]
        removed += len(graph.node) - len(keep)
        for node in keep:
            for i, name in enumerate(node.input):
                if name in rename:
                    node.input[i] = rename[name]
        del graph.node[:]
        graph.node.extend(keep)


def _restore_fp32_outputs(source: Any, converted: Any, onnx: Any) -> None:
    """Make FP32 graph outputs FP32 again where a kept node produced them.

    The converter casts a kept node's output to FP16 and relabels the graph output FP16 even
    with `keep_io_types`; that Cast becomes an Identity (its input is the kept node's FP32).
    """
    wanted = {
        o.name
        for o in source.graph.output
        if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    }
    producer = producers(converted)
    for output in converted.graph.output:
        tensor_type = output.type.tensor_type
        if output.name not in wanted or tensor_type.elem_type != onnx.TensorProto.FLOAT16:
            continue
        node = producer.get(output.name)
        if node is None or node.op_type != "Cast":
            raise ExportError(
                f"graph output {output.name} became FP16 and is not produced by a Cast"
            )
        node.op_type = "Identity"
        del node.attribute[:]
        tensor_type.elem_type = onnx.TensorProto.FLOAT


def _cast_to(node: Any) -> Optional[int]:
    for attr in node.attribute:
        if attr.name == "to":
            return int(attr.i)
    return None


def _plan_kept(
    model: Any,
    keep_ops: Iterable[str],
    keep_nodes: Iterable[str],
    converter_defaults: Iterable[str],
    onnx: Any,
) -> List[KeptNode]:
    ops = set(keep_ops)
    defaults = set(converter_defaults)
    nodes = set(keep_nodes)
    by_name = {n.name: n for n in model.graph.node}
    unknown = sorted(nodes - set(by_name))
    if unknown:
        raise ExportError(f"keep_fp32_nodes names nodes not in the model: {', '.join(unknown)}")
    decomposed: Set[str] = set()
    if "LayerNormalization" in ops:
        for chain in decomposed_layernorm_nodes(model):
            decomposed.update(chain)
    kept = []
    for node in model.graph.node:
        if node.op_type in ops:
            reason = _REASONS.get(node.op_type, "listed in keep_fp32_ops")
        elif node.name in decomposed:
            reason = _DECOMPOSED_LN
        elif node.op_type in defaults:
            reason = _CONVERTER_DEFAULT
        elif node.op_type == "Cast" and _cast_to(node) == onnx.TensorProto.FLOAT:
            reason = _SOURCE_CAST
        elif node.name in nodes:
            reason = _USER_NODE
        else:
            continue
        kept.append(KeptNode(node.name, node.op_type, reason))
    return kept


def _name_nodes(model: Any) -> None:
    """The converter blocks by node name: give every unnamed node a unique one."""
    taken = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_fp16_{i}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def _opset_of(model: Any) -> Optional[int]:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return None


def fp16_from_onnx(
    fp32_path: Path,
    out_path: Path,
    *,
    keep_fp32_ops: Sequence[str] = DEFAULT_KEEP,
    keep_fp32_nodes: Sequence[str] = (),
    opset: int,
) -> Fp16Result:
    """Convert an FP32 ONNX to FP16 with FP32 graph inputs and outputs.

    Args:
        fp32_path: the FP32 (simplified) ONNX.
        out_path: where the FP16 ONNX is written.
        keep_fp32_ops: op types that stay FP32; `LayerNormalization` also covers its opset-16
            decomposition.
        keep_fp32_nodes: node names that stay FP32 (e.g. the ModelSpec's precision hints).
        opset: the opset the input has and the output must keep (from the target TensorRT).

    Returns:
        What was converted, kept and clamped, for the manifest.

    Raises:
        ExportError: unreadable input, wrong opset, unknown node names, or a converted graph
            that fails ONNX's checker.
    """
    onnx = require("onnx", purpose="FP16 conversion")
    float16 = require(
        "onnxconverter_common.float16",
        purpose="FP16 conversion (pip install onnxconverter-common)",
    )
    converter_version = str(require("onnxconverter_common", purpose="FP16 conversion").__version__)
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    try:
        model = onnx.load(str(fp32_path))
    except Exception as exc:  # protobuf DecodeError, OSError, ...
        raise ExportError(f"{fp32_path}: cannot read the ONNX model: {exc}") from exc
    found = _opset_of(model)
    if found != opset:
        raise ExportError(f"{fp32_path}: opset is {found}, expected {opset} for this target")
    if any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer):
        raise ExportError(f"{fp32_path}: the model already holds FP16 initializers")
    before = len(model.graph.node)

    _name_nodes(model)
    _constants_to_initializers(model, onnx)
    defaults = list(float16.DEFAULT_OP_BLOCK_LIST)
    kept = _plan_kept(model, keep_fp32_ops, keep_fp32_nodes, defaults, onnx)
    blocked = {k.name for k in kept}
    _split_shared_initializers(model, blocked, onnx)
    clamped = _clamp_report(model, blocked, onnx)
    for name, counts in clamped.items():
        log.warning("%s: initializer %s clamped to FP16 range: %s", fp32_path, name, counts)

    casts_before = sum(1 for n in model.graph.node if n.op_type == "Cast")
    with warnings.catch_warnings():
        # the converter warns once per clamped tensor; _clamp_report counts them instead
        warnings.filterwarnings("ignore", message="the float32 number")
        try:
            converted = float16.convert_float_to_float16(
                model,
                min_positive_val=FP16_MIN_SUBNORMAL,
                max_finite_val=FP16_MAX,
                keep_io_types=True,
                op_block_list=defaults,
                node_block_list=sorted(blocked),
            )
        except Exception as exc:  # the converter raises ValueError and shape-inference errors
            raise ExportError(f"{fp32_path}: FP16 conversion failed: {exc}") from exc
    _restore_fp32_outputs(model, converted, onnx)
    round_trips = _drop_cast_round_trips(converted, onnx)
    if round_trips:
        log.debug("removed %d FP32->FP16->FP32 casts between kept nodes", round_trips)
    validate_onnx(converted, opset=opset, where=f"{out_path} (FP16)")
    _check_io_fp32(model, converted, onnx, out_path)
    onnx.save(converted, str(out_path))
    casts_after = sum(1 for n in converted.graph.node if n.op_type == "Cast")
    log.info(
        "FP16: %d nodes kept FP32, %d casts added, %d initializers clamped",
        len(kept),
        casts_after - casts_before,
        len(clamped),
    )
    return Fp16Result(
        source=str(fp32_path),
        path=str(out_path),
        opset=opset,
        converter_version=converter_version,
        keep_fp32_ops=tuple(keep_fp32_ops),
        kept_nodes=tuple(kept),
        clamped=clamped,
        casts_added=casts_after - casts_before,
        nodes_before=before,
        nodes_after=len(converted.graph.node),
    )


def _check_io_fp32(source: Any, converted: Any, onnx: Any, where: Path) -> None:
    """Graph inputs and outputs keep their names and element types (FP32 stays FP32)."""

    def io(model: Any) -> List[Tuple[str, int]]:
        values = list(model.graph.input) + list(model.graph.output)
        return [(v.name, v.type.tensor_type.elem_type) for v in values]

    if io(source) != io(converted):
        raise ExportError(
            f"{where}: FP16 conversion changed the graph inputs/outputs from "
            f"{io(source)} to {io(converted)}"
        )
