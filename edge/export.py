"""torch -> ONNX at the opset the target TensorRT parses, then validated.

The legacy TorchScript exporter is used on purpose: the dynamo exporter starts at opset 18,
and TensorRT 8.5 (JetPack 5) needs opset 16, where LayerNorm is decomposed into primitive ops.
Validation runs the ONNX checker with full shape inference and rejects what TensorRT would:
ops newer than the opset, and `Resize` with antialias.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from edge._lazy import require
from edge.errors import ExportError
from edge.spec import ModelSpec

__all__ = ["ExportResult", "onnx_from_model", "validate_onnx", "op_histogram", "stamp_metadata"]

log = logging.getLogger(__name__)

BATCH_AXIS = "batch"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    opset: int
    dynamic_batch: bool
    nodes: int
    torch_version: Optional[str]
    onnx_version: str
    exporter: str = "torch.onnx.export (TorchScript, dynamo=False)"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "file": self.path.name,
            "opset": self.opset,
            "dynamic_batch": self.dynamic_batch,
            "dynamic_axes": {BATCH_AXIS: 0} if self.dynamic_batch else None,
            "nodes": self.nodes,
            "exporter": self.exporter,
            "torch_version": self.torch_version,
            "onnx_version": self.onnx_version,
        }


def op_histogram(model) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def validate_onnx(model, *, opset: int, where: str) -> None:
    """Checker + shape inference, then the TensorRT-relevant rules the checker does not know."""
    onnx = require("onnx", purpose="validating ONNX models")
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx raises ValidationError / InferenceError
        raise ExportError(f"{where}: ONNX validation failed: {exc}") from exc
    default = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if default and default[0] != opset:
        raise ExportError(f"{where}: opset is {default[0]}, expected {opset}")
    problems: List[str] = []
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{node.name} ({node.op_type}) is in custom domain {node.domain!r}")
        if node.op_type == "Resize":
            for attr in node.attribute:
                if attr.name == "antialias" and attr.i:
                    problems.append(f"{node.name}: Resize with antialias=1 (TensorRT rejects it)")
    if problems:
        raise ExportError("{}: {}".format(where, "; ".join(problems)))


def onnx_from_model(
    model,
    spec: ModelSpec,
    out_path: Path,
    *,
    opset: int,
    dynamic_batch: bool = False,
    example_inputs: Optional[Sequence[Any]] = None,
) -> ExportResult:
    """Export `model` (forward takes the spec's inputs in order) to `out_path`."""
    torch = require("torch", purpose="exporting to ONNX")
    onnx = require("onnx", purpose="exporting to ONNX")
    out_path = Path(out_path)
    if example_inputs is None:
        example_inputs = tuple(
            torch.zeros(*[1 if not isinstance(d, int) else d for d in t.shape]) for t in spec.inputs
        )
    input_names = list(spec.input_names())
    output_names = list(spec.output_names())
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {name: {0: BATCH_AXIS} for name in input_names + output_names}
    model = model.eval()
    captured = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(captured):
            # The TorchScript exporter is deprecated in favour of dynamo, which cannot emit
            # opset 16; the warning is expected and not actionable by users.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                tuple(example_inputs),
                str(out_path),
                input_names=input_names,
                output_names=output_names,
                opset_version=opset,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
                dynamo=False,
            )
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"torch.onnx.export of {spec.arch} at opset {opset} failed: {detail}"
        ) from exc
    if captured.getvalue().strip():
        log.debug("exporter output: %s", captured.getvalue().strip())
    exported = onnx.load(str(out_path))
    validate_onnx(exported, opset=opset, where=str(out_path))
    stamp_metadata(exported, spec)
    onnx.save(exported, str(out_path))
    return ExportResult(
        path=out_path,
        opset=opset,
        dynamic_batch=dynamic_batch,
        nodes=len(exported.graph.node),
        torch_version=torch.__version__,
        onnx_version=onnx.__version__,
    )


def stamp_metadata(model, spec: ModelSpec) -> None:
    """Copy the few fields a tool inspecting the bare ONNX file needs (labels, inputs)."""
    entries = {
        "mer_edge.arch": spec.arch,
        "mer_edge.variant": spec.variant,
        "mer_edge.class_names": ",".join(spec.class_names),
        "mer_edge.inputs": ",".join(spec.input_names()),
    }
    del model.metadata_props[:]
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
