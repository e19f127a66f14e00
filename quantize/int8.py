"""Post-training INT8 quantization of an ONNX model into TensorRT-legal Q/DQ.

Two quantizers fill in the Q/DQ nodes; `quantize.legalize` then rewrites what TensorRT would
reject (UINT8, zero points, weight axes) and adds Q/DQ on residual Adds, and `check_qdq` must
come back clean before the model is written:

- `nncf` (default, the card's choice): `nncf.quantize` with the PERFORMANCE preset
  (symmetric weights and activations); NNCF still picks UINT8 for non-negative activations.
- `ort`: onnxruntime `quantize_static`, QDQ format, QInt8 weights and activations,
  symmetric, per channel.

Both keep the FP32 model's opset (TensorRT 8.5 parses opset <= 17). Measured on the demo MMNet
(`benchmarks/bench_quant.py` prints the current numbers): see `quantize.sensitivity` for which
backend keeps the FP32 decisions better.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from calib.prepare import CalibrationSet
from edge._lazy import require
from edge.errors import CalibrationError, EdgeBuildError
from quantize.legalize import Change, legalize, residual_add_inputs

__all__ = [
    "QUANTIZERS",
    "Int8Result",
    "quantize_int8",
    "quantize_model",
    "resolve_nodes",
    "calibration_feeds",
    "RANGES",
    "DEFAULT_RANGES",
    "BIAS_CORRECTION",
    "node_scope",
    "activation_ranges",
]

log = logging.getLogger(__name__)

QUANTIZERS = ("nncf", "ort")
#: Ops `--quantizer ort` quantizes: the compute TensorRT runs in INT8 and the residual Adds.
#: ORT's default list also takes LayerNormalization's scale as a "weight" (per-channel on a
#: rank-1 tensor) and Softmax/Sigmoid outputs, which TensorRT keeps in higher precision anyway.
ORT_OP_TYPES = ("Conv", "Gemm", "MatMul", "Add", "Mul", "Concat", "MaxPool")

#: Where Q/DQ goes. `all`: the quantizer's own choice (NNCF also quantizes the inputs of gating
#: Muls, frame differences, reductions, Concats and pooling); `weighted`: only the inputs of
#: Conv/Gemm/MatMul, as TensorRT's placement guidance and ModelOpt put it (residual Adds get
#: theirs from `quantize.legalize` either way). On the MMNet demo `weighted` kept more FP32
#: decisions on the hard tier (0.987 against 0.967) at the same INT8 MAC share but ran 1.64x FP32
#: on ONNX Runtime CPU against 2.66x (docs/quantization.md); TensorRT's speed decides the
#: default, and no Jetson has measured it yet.
PLACEMENTS = ("all", "weighted")
#: Ops whose inputs NNCF leaves in float with `placement="weighted"`.
NNCF_FLOAT_OPS = (
    "Add", "Mul", "Sub", "Div", "Concat", "Sigmoid", "ReduceMean", "ReduceMax", "ReduceSum",
    "MaxPool", "AveragePool", "GlobalAveragePool",
)  # fmt: skip
#: What `--quantizer ort` quantizes with `placement="weighted"` (ORT still puts Q/DQ on their
#: outputs where other ops read them).
ORT_WEIGHTED_OP_TYPES = ("Conv", "Gemm", "MatMul")
#: How activation ranges are calibrated, per quantizer.
RANGES = {
    "nncf": ("minmax", "mean_minmax", "mean_quantile", "histogram"),
    "ort": ("minmax", "entropy", "percentile"),
}
#: The default per quantizer, chosen by measurement: on 300 hard-tier clips NNCF's
#: `mean_minmax` kept the most FP32 decisions on the MMNet and AFNet-M demos and halved MMNet's
#: logit error against `minmax` (docs/quantization.md, "Calibration methods").
DEFAULT_RANGES = {"nncf": "mean_minmax", "ort": "minmax"}
#: `--calib-bias-correction`: NNCF's fast bias correction on, off, or measured by the build
#: (`auto`: on first; off too when on misses the fidelity rule, the better one kept). It
#: shifts each biased layer's output mean back to FP32's on the calibration data: on the MMNet
#: demo it keeps 1 more hard clip of 100, on AFNet-M it multiplies the hard tier's logit error
#: by 14 (docs/quantization.md), so no fixed setting suits both.
BIAS_CORRECTION = ("auto", "on", "off")
ORT_CALIBRATION = {
    "minmax": lambda q: q.CalibrationMethod.MinMax,
    "entropy": lambda q: q.CalibrationMethod.Entropy,
    "percentile": lambda q: q.CalibrationMethod.Percentile,
}

Feeds = List[Dict[str, np.ndarray]]
Calibration = Union[CalibrationSet, Sequence[Mapping[str, np.ndarray]]]


@dataclass
class Int8Result:
    """What the manifest records about one INT8 model."""

    path: Path
    quantizer: str
    tool: str
    tool_version: str
    opset: int
    excluded: Tuple[str, ...]
    changes: List[Change]
    node_counts: Dict[str, int]
    calibration_samples: int
    seconds: float
    settings: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_details(
        cls, path: Path, quantizer: str, details: Mapping[str, Any], model: Any, samples: int
    ) -> Int8Result:
        """The record of a model `quantize_model` returned and the caller saved at `path`."""
        return cls(
            path=path,
            quantizer=quantizer,
            tool=details["tool"],
            tool_version=details["tool_version"],
            opset=details["opset"],
            excluded=tuple(details["excluded"]),
            changes=list(details["changes"]),
            node_counts=_node_counts(model),
            calibration_samples=samples,
            seconds=details["seconds"],
            settings=details["settings"],
        )

    def to_dict(self) -> Dict[str, Any]:
        kinds = Counter(c.kind for c in self.changes)
        return {
            "file": self.path.name,
            "quantizer": self.quantizer,
            "tool": self.tool,
            "tool_version": self.tool_version,
            "settings": dict(self.settings),
            "opset": self.opset,
            "excluded_nodes": list(self.excluded),
            "legalisation": {
                "counts": dict(sorted(kinds.items())),
                "changes": [c.to_dict() for c in self.changes],
            },
            "node_counts": dict(self.node_counts),
            "calibration_samples": self.calibration_samples,
            "seconds": round(self.seconds, 2),
        }


def _onnx() -> Any:
    return require("onnx", purpose="INT8 quantization")


def _opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise EdgeBuildError("the model declares no default-domain opset")


def node_scope(node: Any, initializers: Sequence[str]) -> str:
    """The module path of a node, also for nodes a simplifier renamed (`Gemm_3`).

    torch names nodes `/vit_pos/blocks.0/attn/MatMul`; onnxsim's fused Gemms lose that name,
    but their parameters (`vit_pos.blocks.0.attn.proj.bias`) still name the top module.
    """
    if node.name.startswith("/"):
        return node.name
    names = set(initializers)
    for tensor in node.input:
        if tensor in names and "." in tensor and not tensor.startswith("onnx::"):
            return "/" + tensor.split(".")[0] + "/" + node.name
    for tensor in node.input:
        if tensor.startswith("/") and "/" in tensor[1:]:
            return tensor.rsplit("/", 1)[0] + "/" + node.name
    return node.name


def resolve_nodes(model: Any, patterns: Sequence[str]) -> Tuple[str, ...]:
    """Node names matching each pattern: the node of that exact name or scope when there is
    one (so `/fusion.0/Mul` is not also `/fusion.0/Mul_1`), else every node whose name or
    scope starts with it (`/vit_pos/`, `/mask_attn_`).

    Raises:
        EdgeBuildError: a pattern that matches no node (a typo would silently keep nothing).
    """
    inits = [t.name for t in model.graph.initializer]
    scoped = [(n.name, node_scope(n, inits)) for n in model.graph.node if n.op_type != "Constant"]
    chosen: List[str] = []
    for pattern in patterns:
        hits = [name for name, scope in scoped if pattern in (name, scope)] or [
            name for name, scope in scoped if name.startswith(pattern) or scope.startswith(pattern)
        ]
        if not hits:
            raise EdgeBuildError(f"exclusion {pattern!r} matches no node of the model")
        chosen.extend(h for h in hits if h not in chosen)
    return tuple(chosen)


def calibration_feeds(calibration: Calibration, seed: int) -> Feeds:
    """Float32 batch-1 feeds in a `seed`-shuffled order (the statistics are order-free)."""
    if isinstance(calibration, CalibrationSet):
        feeds = calibration.feeds()
    else:
        feeds = [dict(f) for f in calibration]
    if not feeds:
        raise CalibrationError("INT8 quantization needs calibration samples; got none")
    order = np.random.default_rng(seed).permutation(len(feeds))
    return [
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds[i].items()} for i in order
    ]


def _session(model_bytes: bytes) -> Any:
    ort = require("onnxruntime", purpose="INT8 quantization")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def activation_ranges(model: Any, tensors: Sequence[str], feeds: Feeds) -> Dict[str, float]:
    """max |x| of float `tensors` of the FP32 `model` over the calibration feeds."""
    if not tensors:
        return {}
    onnx = _onnx()
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {o.name for o in probe.graph.output}
    for name in tensors:
        if name not in present:
            probe.graph.output.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    session = _session(probe.SerializeToString())
    amax = {name: 0.0 for name in tensors}
    for feed in feeds:
        for name, value in zip(tensors, session.run(list(tensors), feed)):
            amax[name] = max(amax[name], float(np.abs(value).max()))
    return amax


def _nncf_progress_to_stderr() -> Any:
    """NNCF draws rich progress bars on stdout; keep stdout for results (`--json`).

    The bars go to stderr in a terminal and nowhere in logs and CI, where they are only noise.
    """
    target = sys.stderr if sys.stderr.isatty() else io.StringIO()
    return contextlib.redirect_stdout(target)


def _nncf_range_estimator(ranges: str) -> Any:
    estimators = require("nncf.quantization.range_estimator", purpose="INT8 quantization")
    table = {
        "minmax": estimators.RangeEstimatorParametersSet.MINMAX,
        "mean_minmax": estimators.RangeEstimatorParametersSet.MEAN_MINMAX,
        "mean_quantile": estimators.RangeEstimatorParametersSet.MEAN_QUANTILE,
        "histogram": estimators.RangeEstimatorParametersSet.HISTOGRAM,
    }
    return table[ranges]


def _nncf_quantize(
    model: Any,
    feeds: Feeds,
    exclude: Sequence[str],
    ranges: str,
    placement: str = "all",
    bias_correction: bool = True,
) -> Tuple[Any, str, Dict]:
    nncf = require("nncf", purpose="INT8 quantization with --quantizer nncf")
    logging.getLogger("nncf").setLevel(logging.WARNING)
    advanced = require("nncf.quantization.advanced_parameters", purpose="INT8 quantization")
    float_ops = list(NNCF_FLOAT_OPS) if placement == "weighted" else []
    ignored = None
    if exclude or float_ops:
        ignored = nncf.IgnoredScope(names=list(exclude), types=float_ops, validate=False)
    # NNCF's default overflow fix halves the first layer's weights to 7 bits for x86 CPUs
    # without VNNI; TensorRT and VNNI CPUs need no such fix, and it costs fidelity.
    with _nncf_progress_to_stderr():
        quantized = nncf.quantize(
            model,
            nncf.Dataset(feeds),
            preset=nncf.QuantizationPreset.PERFORMANCE,
            subset_size=len(feeds),
            ignored_scope=ignored,
            advanced_parameters=advanced.AdvancedQuantizationParameters(
                overflow_fix=advanced.OverflowFix.DISABLE,
                disable_bias_correction=not bias_correction,
                activations_range_estimator_params=_nncf_range_estimator(ranges),
            ),
        )
    settings = {
        "preset": "performance",
        "subset_size": len(feeds),
        "fast_bias_correction": bias_correction,
        "overflow_fix": "disable",
        "activation_ranges": ranges,
        "placement": placement,
    }
    return quantized, nncf.__version__, settings


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: Feeds) -> None:
        self._iter: Iterator[Dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self._iter, None)


def _ort_quantize(
    model: Any, feeds: Feeds, exclude: Sequence[str], ranges: str, placement: str = "all"
) -> Tuple[Any, str, Dict]:
    ort = require("onnxruntime", purpose="INT8 quantization with --quantizer ort")
    q = require("onnxruntime.quantization", purpose="INT8 quantization with --quantizer ort")
    onnx = _onnx()
    # TensorRT dequantizes INT8 only: ORT's default INT32 bias Q/DQ would not parse
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False}
    op_types = ORT_WEIGHTED_OP_TYPES if placement == "weighted" else ORT_OP_TYPES
    with tempfile.TemporaryDirectory(prefix="mer-edge-ort-q-") as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        onnx.save(model, src)
        q.quantize_static(
            src,
            dst,
            _Reader(feeds),
            quant_format=q.QuantFormat.QDQ,
            activation_type=q.QuantType.QInt8,
            weight_type=q.QuantType.QInt8,
            per_channel=True,
            calibrate_method=ORT_CALIBRATION[ranges](q),
            op_types_to_quantize=list(op_types),
            nodes_to_exclude=list(exclude),
            extra_options=extra,
        )
        quantized = onnx.load(dst)
    settings = {
        "format": "QDQ",
        "activation_type": "QInt8",
        "weight_type": "QInt8",
        "per_channel": True,
        "calibrate_method": ORT_CALIBRATION[ranges](q).name,
        "op_types_to_quantize": list(op_types),
        "placement": placement,
        **extra,
    }
    return quantized, ort.__version__, settings


def _node_counts(model: Any) -> Dict[str, int]:
    ops = Counter(n.op_type for n in model.graph.node)
    dq_outputs = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    quantized = {
        user.name
        for user in model.graph.node
        if user.op_type not in ("QuantizeLinear", "DequantizeLinear")
        and any(name in dq_outputs for name in user.input)
    }
    return {
        "nodes": len(model.graph.node),
        "quantize_linear": ops.get("QuantizeLinear", 0),
        "dequantize_linear": ops.get("DequantizeLinear", 0),
        "nodes_reading_int8": len(quantized),
    }


def quantize_model(
    fp32_model: Any,
    feeds: Feeds,
    *,
    quantizer: str = "nncf",
    exclude: Sequence[str] = (),
    opset: Optional[int] = None,
    ranges: Optional[str] = None,
    placement: str = "all",
    bias_correction: bool = True,
) -> Tuple[Any, Dict[str, Any]]:
    """Quantize and legalise an in-memory FP32 ModelProto; returns (model, details).

    The building block of `quantize_int8` and of the sensitivity search, which calls it
    repeatedly with different exclusions on the same feeds.
    """
    if quantizer not in QUANTIZERS:
        raise EdgeBuildError(
            f"unknown quantizer {quantizer!r}; choose one of {', '.join(QUANTIZERS)}"
        )
    ranges = ranges or DEFAULT_RANGES[quantizer]
    if ranges not in RANGES[quantizer]:
        raise EdgeBuildError(
            f"unknown activation range method {ranges!r} for {quantizer}; choose one of "
            + ", ".join(RANGES[quantizer])
        )
    source_opset = _opset(fp32_model)
    if opset is not None and opset != source_opset:
        raise EdgeBuildError(
            f"the FP32 model has opset {source_opset} but opset {opset} was requested; "
            "export at the target's opset instead of converting (Q/DQ keeps the source opset)"
        )
    if placement not in PLACEMENTS:
        raise EdgeBuildError(
            f"unknown INT8 placement {placement!r}; choose one of {', '.join(PLACEMENTS)}"
        )
    names = resolve_nodes(fp32_model, exclude) if exclude else ()
    start = time.perf_counter()
    if quantizer == "nncf":
        quantized, version, settings = _nncf_quantize(
            fp32_model, feeds, names, ranges, placement, bias_correction
        )
    else:  # ONNX Runtime's quantizer has no bias correction to turn off
        quantized, version, settings = _ort_quantize(fp32_model, feeds, names, ranges, placement)
    if _opset(quantized) != source_opset:
        raise EdgeBuildError(
            f"{quantizer} changed the opset from {source_opset} to {_opset(quantized)}; "
            "TensorRT targets need the exported opset"
        )
    residual = residual_add_inputs(quantized, exclude=names)
    residual_ranges = activation_ranges(fp32_model, residual, feeds)
    changes = legalize(
        quantized, activation_ranges=residual_ranges, exclude=names, where=f"{quantizer} INT8 model"
    )
    details = {
        "tool": "nncf" if quantizer == "nncf" else "onnxruntime.quantization",
        "tool_version": version,
        "settings": settings,
        "opset": source_opset,
        "excluded": names,
        "changes": changes,
        "seconds": time.perf_counter() - start,
    }
    return quantized, details


def quantize_int8(
    fp32_path: Union[str, os.PathLike[str]],
    out_path: Union[str, os.PathLike[str]],
    calibration: Calibration,
    *,
    quantizer: str = "nncf",
    exclude: Sequence[str] = (),
    opset: Optional[int] = None,
    seed: int = 0,
    ranges: Optional[str] = None,
    placement: str = "all",
    bias_correction: bool = True,
) -> Int8Result:
    """Write a TensorRT-legal INT8 Q/DQ ONNX of `fp32_path` to `out_path`.

    Args:
        calibration: a CalibrationSet or batch-1 feed dicts; used in a `seed`-shuffled order.
        quantizer: `nncf` or `ort`.
        exclude: node names or name/scope prefixes (`/vit_pos/`) kept in FP32.
        opset: the target's opset; must equal the FP32 model's (checked, never converted).
        seed: order of the calibration samples (the statistics themselves are order-free).
        ranges: how activation ranges are calibrated (`RANGES[quantizer]`; None: the
            quantizer's `DEFAULT_RANGES`).
        placement: where Q/DQ goes (`PLACEMENTS`: `all` or `weighted`).
        bias_correction: NNCF's fast bias correction (ignored by `ort`, which has none).

    Raises:
        EdgeBuildError: unknown quantizer, opset mismatch, an exclusion matching nothing, or
            Q/DQ that stays illegal for TensorRT; CalibrationError: no calibration samples.
    """
    onnx = _onnx()
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if not fp32_path.is_file():
        raise EdgeBuildError(f"{fp32_path}: FP32 ONNX model not found")
    model = onnx.load(str(fp32_path))
    feeds = calibration_feeds(calibration, seed)
    log.info("INT8 (%s): calibrating on %d samples", quantizer, len(feeds))
    quantized, details = quantize_model(
        model, feeds, quantizer=quantizer, exclude=exclude, opset=opset, ranges=ranges,
        placement=placement, bias_correction=bias_correction,
    )  # fmt: skip
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(quantized, str(out_path))
    return Int8Result.from_details(out_path, quantizer, details, quantized, len(feeds))
