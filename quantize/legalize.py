"""Rewrite a quantizer's Q/DQ ONNX into what TensorRT parses as intended.

NNCF and onnxruntime target their own CPU kernels, not TensorRT: NNCF gives non-negative
activations (ReLU, Sigmoid, Softmax outputs) UINT8 Q/DQ, the MIXED preset and ORT's defaults
are asymmetric, and ORT may put per-channel Gemm weight scales on the wrong axis. TensorRT
accepts only symmetric INT8 (zero point 0) and per-channel weights on the output-channel axis
(facts/tensorrt.md §1.7). This pass:

- requantizes every constant weight whose Q/DQ is illegal to symmetric INT8, per channel on
  the consumer's output-channel axis;
- rewrites activation Q/DQ pairs to INT8 with zero point 0 and the scale that covers the same
  real range (a UINT8 [0, 255*s] range becomes [-127, 127] * 255*s/127: one bit of resolution
  is lost on non-negative tensors, exactly what TensorRT's symmetric INT8 costs anyway);
- places Q/DQ around residual Adds as TensorRT fuses them (Developer Guide, Q/DQ placement
  recommendations; NVIDIA/TensorRT #1992, #3270): no Q/DQ on the output of the Conv the Add is
  fused into, a Q/DQ on the residual input, so Conv + Add (+ ReLU) run as one INT8 layer;
- removes a Q/DQ between a Conv/Gemm and the activation TensorRT fuses into it;
- removes a lone Q/DQ from a Conv/Gemm/MatMul whose other input is float: no INT8 kernel
  reads it, and it only adds a rounding (and, for TensorRT, a reformat).

It never changes the opset. The result must pass `edge.lint.check_qdq`, or `legalize` raises.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from edge._lazy import require
from edge.errors import EdgeBuildError
from edge.lint import check_qdq, errors
from edge.lint.qdq import output_channel_axis

__all__ = [
    "Change",
    "legalize",
    "residual_add_inputs",
    "SHAPE_OPS",
]

log = logging.getLogger(__name__)

#: Ops that move values without changing them: Q/DQ propagates through them in TensorRT.
SHAPE_OPS = ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze")
#: Producers an elementwise Add can be fused into as a residual input.
FUSABLE = ("Conv", "Gemm", "MatMul")


@dataclass(frozen=True)
class Change:
    """One rewrite, for the manifest: what kind, on which node/tensor, and the detail."""

    kind: str
    node: str
    detail: str

    def to_dict(self) -> Dict[str, str]:
        return {"kind": self.kind, "node": self.node, "detail": self.detail}


def _attr_int(node: Any, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


class _Graph:
    """Indexes over a ModelProto's graph that the rewrites keep up to date."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.helper = require("onnx.helper", purpose="legalising Q/DQ models")
        self.numpy_helper = require("onnx.numpy_helper", purpose="legalising Q/DQ models")
        self.inits = {t.name: t for t in model.graph.initializer}
        self.const: Dict[str, np.ndarray] = {
            name: self.numpy_helper.to_array(t) for name, t in self.inits.items()
        }
        for node in model.graph.node:
            if node.op_type == "Constant" and node.output:
                for attr in node.attribute:
                    if attr.name == "value":
                        self.const[node.output[0]] = self.numpy_helper.to_array(attr.t)
        self.reindex()
        self._serial = 0

    def reindex(self) -> None:
        self.producer = {o: n for n in self.model.graph.node for o in n.output}
        self.users: Dict[str, List[Tuple[Any, int]]] = {}
        for node in self.model.graph.node:
            for index, name in enumerate(node.input):
                self.users.setdefault(name, []).append((node, index))

    def fresh(self, base: str) -> str:
        self._serial += 1
        return f"{base}__trt{self._serial}"

    def add_const(self, base: str, value: np.ndarray) -> str:
        name = self.fresh(base)
        self.model.graph.initializer.append(self.numpy_helper.from_array(value, name))
        self.const[name] = value
        return name

    def zero_point(self, node: Any) -> Tuple[np.ndarray, bool]:
        """(zero point values, is UINT8); a missing zero point means UINT8 0."""
        if len(node.input) > 2 and node.input[2]:
            zp = self.const.get(node.input[2])
            if zp is None:
                raise EdgeBuildError(
                    f"Q/DQ node {node.name!r}: zero point {node.input[2]!r} is not a constant; "
                    "cannot legalise it for TensorRT"
                )
            return zp, zp.dtype == np.uint8
        return np.zeros((), dtype=np.uint8), True


def _range_bounds(zp: np.ndarray, unsigned: bool) -> Tuple[np.ndarray, np.ndarray]:
    qmin, qmax = (0, 255) if unsigned else (-128, 127)
    z = zp.astype(np.float64)
    return qmin - z, qmax - z


def _symmetric_scale(scale: np.ndarray, zp: np.ndarray, unsigned: bool) -> np.ndarray:
    """The INT8 zero-point-0 scale covering the real range the old Q/DQ represented."""
    lo, hi = _range_bounds(zp, unsigned)
    span = np.maximum(np.abs(lo), np.abs(hi)) * scale.astype(np.float64)
    return np.maximum(span / 127.0, np.finfo(np.float32).tiny).astype(scale.dtype)


def _quantize_weight(weight: np.ndarray, axis: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Symmetric INT8, per channel on `axis` (None: per tensor): (int8 values, scales)."""
    w = weight.astype(np.float64)
    if axis is None:
        amax = np.abs(w).max(initial=0.0)
        scale = np.asarray(max(amax, 1e-12) / 127.0)
        shaped = scale
    else:
        other = tuple(i for i in range(w.ndim) if i != axis)
        amax = np.abs(w).max(axis=other, initial=0.0)
        scale = np.maximum(amax, 1e-12) / 127.0
        shape = [1] * w.ndim
        shape[axis] = -1
        shaped = scale.reshape(shape)
    q = np.clip(np.round(w / shaped), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def _dequantize(node: Any, g: _Graph) -> np.ndarray:
    data = g.const[node.input[0]].astype(np.float64)
    scale = g.const[node.input[1]].astype(np.float64)
    zp, _ = g.zero_point(node)
    zp = zp.astype(np.float64)
    if scale.size > 1:
        axis = _attr_int(node, "axis", 1)
        axis = axis + data.ndim if axis < 0 else axis
        shape = [1] * data.ndim
        shape[axis] = -1
        scale = scale.reshape(shape)
        zp = zp.reshape(shape) if zp.size > 1 else zp
    return (data - zp) * scale


def _weight_consumer_axis(node: Any, g: _Graph, rank: int) -> Tuple[Optional[int], bool]:
    """(wanted per-channel axis, whether any consumer has one) for a weight DQ."""
    for consumer, index in g.users.get(node.output[0], []):
        axis = output_channel_axis(consumer, index, rank)
        if axis is not None:
            return axis, True
    return None, False


def _fix_weight(node: Any, g: _Graph) -> Optional[Change]:
    data = g.const[node.input[0]]
    scale = g.const.get(node.input[1])
    if scale is None:
        return None
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        return None  # reported by the final check
    zp, unsigned = g.zero_point(node)
    want, known = _weight_consumer_axis(node, g, data.ndim)
    axis = _attr_int(node, "axis", 1)
    axis = axis + data.ndim if axis < 0 else axis
    wrong_axis = scale.size > 1 and known and axis != want
    if not unsigned and not np.any(zp != 0) and not wrong_axis:
        return None
    weight = _dequantize(node, g)
    per_channel_axis = want if (scale.size > 1 or known) and want is not None else None
    values, new_scale = _quantize_weight(weight, per_channel_axis)
    zeros = np.zeros(new_scale.shape, dtype=np.int8)
    del node.input[:]
    node.input.extend(
        [
            g.add_const(node.name + "_w", values),
            g.add_const(node.name + "_scale", new_scale),
            g.add_const(node.name + "_zp", zeros),
        ]
    )
    for attr in list(node.attribute):
        if attr.name == "axis":
            node.attribute.remove(attr)
    if per_channel_axis is not None:
        node.attribute.append(g.helper.make_attribute("axis", int(per_channel_axis)))
    why = [w for w, bad in (("UINT8", unsigned), ("zero point != 0", np.any(zp != 0)),
                            (f"axis {axis} != {want}", wrong_axis)) if bad]  # fmt: skip
    where = "per tensor" if per_channel_axis is None else f"per channel on axis {per_channel_axis}"
    return Change(
        "weight", node.name, "requantized to symmetric INT8 {} ({})".format(where, ", ".join(why))
    )


def _wide_constant(node: Any, g: _Graph) -> bool:
    data = g.const.get(node.input[0])
    return data is not None and data.dtype in (np.int32, np.int16, np.uint16)


def _fold_constant(node: Any, g: _Graph) -> Change:
    """Replace a DequantizeLinear of an INT32 constant (ORT's bias Q/DQ) by its float value."""
    value = _dequantize(node, g).astype(np.float32)
    dtype = g.const[node.input[0]].dtype
    constant = g.helper.make_tensor(
        node.name + "_value", g.numpy_helper.from_array(value).data_type, value.shape,
        value.tobytes(), raw=True,
    )  # fmt: skip
    node.op_type = "Constant"
    del node.input[:]
    del node.attribute[:]
    node.attribute.append(g.helper.make_attribute("value", constant))
    return Change(
        "bias", node.name, f"{dtype} constant dequantized to FP32 (TensorRT reads INT8 only)"
    )


def _fix_activation(q: Any, g: _Graph) -> Optional[Change]:
    """Rewrite a QuantizeLinear and the DequantizeLinears reading it to INT8, zero point 0."""
    scale = g.const.get(q.input[1]) if len(q.input) > 1 else None
    if scale is None:
        return None
    zp, unsigned = g.zero_point(q)
    if not unsigned and not np.any(zp != 0):
        return None
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        return None  # a broken scale is not ours to guess: the final check reports it
    dqs = [u for u, _ in g.users.get(q.output[0], []) if u.op_type == "DequantizeLinear"]
    for dq in dqs:
        dq_scale = g.const.get(dq.input[1])
        dq_zp, dq_unsigned = g.zero_point(dq)
        if (
            dq_scale is None
            or not np.array_equal(dq_scale, scale)
            or dq_unsigned != unsigned
            or not np.array_equal(dq_zp, zp)
        ):
            raise EdgeBuildError(
                f"Q/DQ pair {q.name!r} -> {dq.name!r} uses different scales or zero points; "
                "cannot legalise it for TensorRT"
            )
    new_scale = _symmetric_scale(scale, zp, unsigned)
    scale_name = g.add_const(q.name + "_scale", new_scale)
    zp_name = g.add_const(q.name + "_zp", np.zeros(new_scale.shape, dtype=np.int8))
    for node in [q, *dqs]:
        inputs = [node.input[0], scale_name, zp_name]
        del node.input[:]
        node.input.extend(inputs)
    _retype(g.model, q.output[0])
    ratio = float(np.max(new_scale / np.maximum(scale, np.finfo(np.float32).tiny)))
    kind = "UINT8" if unsigned else "asymmetric INT8"
    return Change(
        "activation",
        q.name,
        f"{kind} -> symmetric INT8 (scale x{ratio:.3f}, {len(dqs)} DequantizeLinear)",
    )


def _dq_fed(name: str, g: _Graph) -> bool:
    """Whether the tensor comes from a DequantizeLinear, directly or through shape-only ops."""
    node = g.producer.get(name)
    while node is not None and node.op_type in SHAPE_OPS:
        node = g.producer.get(node.input[0])
    return node is not None and node.op_type == "DequantizeLinear"


def _qdq_pair(name: str, g: _Graph) -> Optional[Tuple[Any, Any]]:
    """(Q, DQ) when `name` is a DequantizeLinear output fed by a QuantizeLinear, else None."""
    dq = g.producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = g.producer.get(dq.input[0])
    if q is None or q.op_type != "QuantizeLinear":
        return None
    return q, dq


def _fusable_conv(name: str, g: _Graph) -> Optional[Any]:
    """The Conv/Gemm/MatMul producing `name` (seen through one Q/DQ pair) that TensorRT can fuse
    an Add into: its output feeds nothing else."""
    pair = _qdq_pair(name, g)
    source = pair[0].input[0] if pair is not None else name
    node = g.producer.get(source)
    if node is None or node.op_type not in FUSABLE:
        return None
    if len(g.users.get(source, [])) != 1:
        return None
    if pair is not None:
        q, dq = pair
        if len(g.users.get(q.output[0], [])) != 1 or len(g.users.get(dq.output[0], [])) != 1:
            return None
    return node


def _residual_adds(g: _Graph, skip: Set[str]) -> List[Tuple[Any, int, int]]:
    """(Add, fused input index, residual input index) for every Add TensorRT can fuse into the
    Conv behind one of its inputs; with two candidates the later one (the deeper branch) fuses."""
    order = {id(n): i for i, n in enumerate(g.model.graph.node)}
    found = []
    for node in g.model.graph.node:
        if node.op_type != "Add" or len(node.input) != 2 or node.name in skip:
            continue
        if any(name in g.const for name in node.input):
            continue
        convs = [_fusable_conv(name, g) for name in node.input]
        candidates = [i for i, c in enumerate(convs) if c is not None]
        if not candidates:
            continue
        fused = max(candidates, key=lambda i: order[id(convs[i])])
        found.append((node, fused, 1 - fused))
    return found


def residual_add_inputs(model: Any, *, exclude: Sequence[str] = ()) -> List[str]:
    """Residual inputs `legalize` will quantize: their ranges must be measured first."""
    g = _Graph(model)
    return sorted(
        {
            node.input[residual]
            for node, fused, residual in _residual_adds(g, set(exclude))
            if not _dq_fed(node.input[residual], g) and _int8_compute(node.input[fused], g)
        }
    )


def _drop_nodes(g: _Graph, dead: Set[int]) -> None:
    """Remove the nodes whose `id()` is in `dead` (bypassed Q/DQ pairs) and reindex."""
    if dead:
        keep = [n for n in g.model.graph.node if id(n) not in dead]
        del g.model.graph.node[:]
        g.model.graph.node.extend(keep)
        g.reindex()


def _unquantize_fused_branches(g: _Graph, skip: Set[str]) -> List[Change]:
    """Remove the Q/DQ on the Conv output an Add is fused into (TensorRT placement rule)."""
    changes: List[Change] = []
    dead: Set[int] = set()
    for node, fused, _ in _residual_adds(g, skip):
        pair = _qdq_pair(node.input[fused], g)
        if pair is None:
            continue
        q, dq = pair
        conv = g.producer[q.input[0]]
        node.input[fused] = q.input[0]
        dead.update((id(q), id(dq)))
        changes.append(
            Change(
                "residual-fusion",
                node.name,
                f"Q/DQ removed from {conv.name!r}'s output so TensorRT fuses this Add into it",
            )  # fmt: skip
        )
    _drop_nodes(g, dead)
    return changes


def _quantize_residuals(
    g: _Graph, ranges: Mapping[str, float], skip: Set[str]
) -> Tuple[List[Change], List[str]]:
    """Q/DQ on the residual input of a fused Add whose other branch computes in INT8."""
    changes: List[Change] = []
    missing: List[str] = []
    before: Dict[int, List[Any]] = {}
    for node, fused, index in _residual_adds(g, skip):
        tensor = node.input[index]
        if _dq_fed(tensor, g) or not _int8_compute(node.input[fused], g):
            continue
        amax = ranges.get(tensor)
        if amax is None or not np.isfinite(amax) or amax <= 0:
            missing.append(tensor)
            continue
        scale = g.add_const(tensor + "_scale", np.asarray(amax / 127.0, dtype=np.float32))
        zp = g.add_const(tensor + "_zp", np.asarray(0, dtype=np.int8))
        q_out, dq_out = g.fresh(tensor + "_q"), g.fresh(tensor + "_dq")
        before[id(node)] = [
            g.helper.make_node("QuantizeLinear", [tensor, scale, zp], [q_out], name=q_out),
            g.helper.make_node("DequantizeLinear", [q_out, scale, zp], [dq_out], name=dq_out),
        ]
        node.input[index] = dq_out
        changes.append(
            Change("residual", node.name, f"Q/DQ added on input {tensor!r} (|x| <= {amax:.4g})")
        )
    if before:
        nodes = []
        for node in g.model.graph.node:
            nodes.extend(before.get(id(node), []))
            nodes.append(node)
        del g.model.graph.node[:]
        g.model.graph.node.extend(nodes)
        g.reindex()
    return changes, missing


def _int8_compute(name: str, g: _Graph) -> bool:
    """Whether the Conv behind `name` reads INT8 data (its input is a DequantizeLinear)."""
    pair = _qdq_pair(name, g)
    conv = g.producer.get(pair[0].input[0] if pair is not None else name)
    return conv is not None and bool(conv.input) and _dq_fed(conv.input[0], g)


#: Activations TensorRT fuses into the Conv/Gemm before them.
ACTIVATIONS = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish")


def _unquantize_before_activations(g: _Graph, skip: Set[str]) -> List[Change]:
    """Remove a Q/DQ between a Conv/Gemm and its activation: TensorRT fuses the pair and
    quantizes the activation's output, so that pair only blocks the fusion (ORT's quantizer
    puts it there for its own kernels)."""
    changes: List[Change] = []
    dead: Set[int] = set()
    for node in g.model.graph.node:
        if node.op_type not in ACTIVATIONS or node.name in skip or not node.input:
            continue
        pair = _qdq_pair(node.input[0], g)
        if pair is None:
            continue
        q, dq = pair
        source = g.producer.get(q.input[0])
        if source is None or source.op_type not in FUSABLE:
            continue
        if len(g.users.get(q.output[0], [])) != 1 or len(g.users.get(dq.output[0], [])) != 1:
            continue
        if len(g.users.get(q.input[0], [])) != 1:
            continue
        node.input[0] = q.input[0]
        dead.update((id(q), id(dq)))
        changes.append(
            Change(
                "activation-fusion",
                node.name,
                f"Q/DQ removed between {source.name!r} and this activation so TensorRT fuses them",
            )  # fmt: skip
        )
    _drop_nodes(g, dead)
    return changes


def _unquantize_partial(g: _Graph, skip: Set[str]) -> List[Change]:
    """A weighted op with only one INT8 input is no INT8 kernel: drop that lone Q/DQ.

    A weight goes back to its dequantized float values; an activation Q/DQ read by nothing
    else is bypassed. Either way the op computes what it computed before, minus one rounding.
    """
    changes: List[Change] = []
    for node in list(g.model.graph.node):
        if node.op_type not in FUSABLE or len(node.input) < 2 or node.name in skip:
            continue
        data, weight = node.input[0], node.input[1]
        if _dq_fed(data, g) == _dq_fed(weight, g):
            continue
        if _dq_fed(weight, g):
            dq = g.producer.get(weight)
            if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in g.const:
                continue
            values = _dequantized(dq, g)
            node.input[1] = g.add_const(dq.input[0] + "_float", values.astype(np.float32))
            what = "weight"
        else:
            pair = _qdq_pair(data, g)
            if pair is None or len(g.users.get(pair[1].output[0], [])) != 1:
                continue
            node.input[0] = pair[0].input[0]
            what = "input"
        changes.append(
            Change("partial", node.name, f"lone INT8 {what} Q/DQ removed: no INT8 kernel reads it")
        )
        g.reindex()
    if changes:
        used = {name for n in g.model.graph.node for name in n.input}
        used.update(o.name for o in g.model.graph.output)
        keep = []
        for n in g.model.graph.node:
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not any(
                o in used for o in n.output
            ):
                continue
            keep.append(n)
        if len(keep) != len(g.model.graph.node):
            del g.model.graph.node[:]
            g.model.graph.node.extend(keep)
            # a Q whose DQ just went away is now unused as well
            used = {name for n in g.model.graph.node for name in n.input}
            used.update(o.name for o in g.model.graph.output)
            keep = [
                n
                for n in g.model.graph.node
                if n.op_type != "QuantizeLinear" or any(o in used for o in n.output)
            ]
            del g.model.graph.node[:]
            g.model.graph.node.extend(keep)
        g.reindex()
    return changes


def _dequantized(dq: Any, g: _Graph) -> np.ndarray:
    values = g.const[dq.input[0]].astype(np.float64)
    scale = g.const[dq.input[1]].astype(np.float64)
    zp = g.const.get(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
    zp = np.zeros_like(scale) if zp is None else zp.astype(np.float64)
    axis = _attr_int(dq, "axis", 1)
    if scale.ndim == 1 and values.ndim > 1:
        shape = [1] * values.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return (values - zp) * scale


def legalize(
    model: Any,
    *,
    activation_ranges: Optional[Mapping[str, float]] = None,
    exclude: Sequence[str] = (),
    where: str = "INT8 model",
) -> List[Change]:
    """Rewrite `model` (an onnx ModelProto, in place) into TensorRT-legal Q/DQ.

    Args:
        activation_ranges: max |x| per tensor for the residual-Add inputs that need a new
            Q/DQ (`residual_add_inputs`); Adds without a range are left as they are.
        exclude: node names kept in higher precision: their Adds get no new Q/DQ.
        where: names the model in error messages.

    Returns:
        The rewrites made, in order.

    Raises:
        EdgeBuildError: when the result still breaks a TensorRT Q/DQ rule.
    """
    g = _Graph(model)
    changes: List[Change] = []
    for node in list(model.graph.node):
        if node.op_type == "DequantizeLinear" and _wide_constant(node, g):
            change = _fold_constant(node, g)
        elif node.op_type == "DequantizeLinear" and node.input[0] in g.const:
            change = _fix_weight(node, g)
        elif node.op_type == "QuantizeLinear" and node.input[0] not in g.const:
            change = _fix_activation(node, g)
        else:
            change = None
        if change is not None:
            changes.append(change)
    g.reindex()
    changes.extend(_unquantize_before_activations(g, set(exclude)))
    changes.extend(_unquantize_fused_branches(g, set(exclude)))
    changes.extend(_unquantize_partial(g, set(exclude)))
    residual, missing = _quantize_residuals(g, activation_ranges or {}, set(exclude))
    changes.extend(residual)
    if missing:
        log.info("no measured range for residual Add inputs %s; left unquantized", missing)
    _drop_unused_initializers(model)
    problems = errors(check_qdq(model))
    if problems:
        raise EdgeBuildError(
            f"{where}: {len(problems)} Q/DQ problem(s) remain after legalisation, first: {problems[0]}"
        )
    return changes


def _retype(model: Any, tensor: str) -> None:
    """Declared types of a rewritten Q output (quantizers record UINT8 in value_info)."""
    onnx = require("onnx", purpose="legalising Q/DQ models")
    for info in list(model.graph.value_info) + list(model.graph.output):
        if info.name == tensor and info.type.HasField("tensor_type"):
            info.type.tensor_type.elem_type = onnx.TensorProto.INT8


def _drop_unused_initializers(model: Any) -> None:
    used = {name for node in model.graph.node for name in node.input}
    used.update(o.name for o in model.graph.output)
    keep = [t for t in model.graph.initializer if t.name in used]
    if len(keep) != len(model.graph.initializer):
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep)
