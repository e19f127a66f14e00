"""Graph simplification: onnxsim when it is installed and works, onnxslim otherwise, or none.

Both fold BatchNorm into Conv and remove shape arithmetic TensorRT would otherwise parse. A
simplifier's own failure is not swallowed: `auto` records why onnxsim was skipped and falls back,
while an explicitly chosen simplifier that fails stops the build. The caller re-checks numerical
parity against the unsimplified model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from edge._lazy import is_available, require
from edge.errors import ExportError
from edge.export import validate_onnx

__all__ = ["SIMPLIFIERS", "SimplifyResult", "simplify_onnx"]

log = logging.getLogger(__name__)

SIMPLIFIERS = ("auto", "onnxsim", "onnxslim", "none")


@dataclass(frozen=True)
class SimplifyResult:
    requested: str
    tool: str
    version: Optional[str]
    nodes_before: int
    nodes_after: int
    fallback_reason: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "requested": self.requested,
            "tool": self.tool,
            "version": self.version,
            "nodes_before": self.nodes_before,
            "nodes_after": self.nodes_after,
            "fallback_reason": self.fallback_reason,
        }


def _run_onnxsim(model) -> Tuple[Any, str]:
    onnxsim = require("onnxsim", purpose="--simplifier onnxsim")
    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise ExportError("onnxsim's own output check failed")
    return simplified, str(onnxsim.__version__).lstrip("v")


def _run_onnxslim(model) -> Tuple[Any, str]:
    onnxslim = require("onnxslim", purpose="--simplifier onnxslim")
    return onnxslim.slim(model), str(onnxslim.__version__)


_RUNNERS = {"onnxsim": _run_onnxsim, "onnxslim": _run_onnxslim}


def _io_names(model) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    return (
        tuple(i.name for i in model.graph.input),
        tuple(o.name for o in model.graph.output),
    )


def _simplify_with(tool: str, model, *, opset: int, where: str):
    try:
        simplified, version = _RUNNERS[tool](model)
    except ExportError as exc:
        raise ExportError(f"{where}: {tool} failed: {exc}") from exc
    except Exception as exc:  # third-party failures of every kind end here, with their reason
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{where}: {tool} failed: {detail}") from exc
    validate_onnx(simplified, opset=opset, where=f"{where} after {tool}")
    if _io_names(simplified) != _io_names(model):
        raise ExportError(
            f"{where}: {tool} changed the graph's inputs/outputs from {_io_names(model)} to {_io_names(simplified)}"
        )
    return simplified, version


def simplify_onnx(src: Path, dst: Path, *, method: str = "auto", opset: int) -> SimplifyResult:
    """Simplify `src` into `dst` (a copy when `method` is `none`)."""
    if method not in SIMPLIFIERS:
        raise ExportError(
            "unknown simplifier {!r}; choose one of {}".format(method, ", ".join(SIMPLIFIERS))
        )
    onnx = require("onnx", purpose="simplifying ONNX models")
    model = onnx.load(str(src))
    before = len(model.graph.node)
    fallback = None
    if method == "none":
        onnx.save(model, str(dst))
        return SimplifyResult(method, "none", None, before, before)
    if method == "auto":
        tool = "onnxsim"
        if not is_available("onnxsim"):
            fallback = "onnxsim is not installed"
        else:
            try:
                simplified, version = _simplify_with("onnxsim", model, opset=opset, where=str(src))
            except ExportError as exc:
                fallback = str(exc)
        if fallback is not None:
            log.warning("falling back to onnxslim: %s", fallback)
            tool = "onnxslim"
            simplified, version = _simplify_with("onnxslim", model, opset=opset, where=str(src))
    else:
        tool = method
        simplified, version = _simplify_with(method, model, opset=opset, where=str(src))
    onnx.save(simplified, str(dst))
    return SimplifyResult(method, tool, version, before, len(simplified.graph.node), fallback)
