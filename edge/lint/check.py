"""`lint_onnx`: will this ONNX parse on the target TensorRT? Answered before the device build."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union

from edge._lazy import require
from edge.errors import EdgeBuildError
from edge.lint.findings import ERROR, Finding
from edge.lint.placement import check_placement
from edge.lint.qdq import check_qdq
from edge.lint.tables import RELEASES, ReleaseRules, releases_for

__all__ = ["PROTOBUF_LIMIT", "lint_onnx", "errors"]

#: protobuf's 2 GB message limit: larger single-file ONNX cannot be parsed from bytes.
PROTOBUF_LIMIT = (1 << 31) - 1

_ONNX_DOMAINS = ("", "ai.onnx")


def _opset(model: Any) -> int:
    for entry in model.opset_import:
        if entry.domain in _ONNX_DOMAINS:
            return int(entry.version)
    raise EdgeBuildError("the model imports no default-domain (ai.onnx) opset")


def _release_findings(model: Any, rules: ReleaseRules, known_ops: set) -> List[Finding]:
    found = []
    opset = _opset(model)
    if opset > rules.opset_max or (rules.opset_min is not None and opset < rules.opset_min):
        low = rules.opset_min if rules.opset_min is not None else "?"
        found.append(
            Finding(
                "opset",
                ERROR,
                f"opset {opset} is outside the range TensorRT parses here "
                f"({low}-{rules.opset_max}); re-export with edge-build --target-trt",
            )
        )
    for node in model.graph.node:
        domain = node.domain or ""
        if domain not in _ONNX_DOMAINS:
            found.append(
                Finding(
                    "custom-op",
                    ERROR,
                    f"operator of domain {domain!r} needs a TensorRT plugin",
                    node.name,
                    node.op_type,
                )
            )
        elif node.op_type not in known_ops:
            found.append(
                Finding("unknown-op", ERROR, "not an ONNX operator", node.name, node.op_type)
            )
        elif node.op_type in rules.unsupported:
            found.append(
                Finding(
                    "unsupported-op",
                    ERROR,
                    "TensorRT's ONNX parser has no importer for this operator",
                    node.name,
                    node.op_type,
                )
            )
        if node.op_type == "Resize":
            for attr in node.attribute:
                if attr.name == "antialias" and attr.i != 0:
                    found.append(
                        Finding(
                            "resize-antialias",
                            ERROR,
                            "Resize with antialias=1 is rejected "
                            "by TensorRT; export with antialias=False",
                            node.name,
                            node.op_type,
                        )
                    )
    return found


def _merge(per_release: Dict[str, List[Finding]]) -> List[Finding]:
    """One finding per (rule, node, message), naming every release it applies to."""
    merged: Dict[Tuple, List[str]] = {}
    order: List[Finding] = []
    for release, findings in per_release.items():
        for finding in findings:
            key = (finding.rule, finding.severity, finding.node, finding.op, finding.message)
            if key not in merged:
                merged[key] = []
                order.append(finding)
            merged[key].append(release)
    out = []
    for finding in order:
        key = (finding.rule, finding.severity, finding.node, finding.op, finding.message)
        out.append(
            Finding(
                finding.rule,
                finding.severity,
                finding.message,
                finding.node,
                finding.op,
                tuple(merged[key]),
            )
        )
    return out


def lint_onnx(
    model_or_path: Union[Any, str, os.PathLike[str]],
    target: str,
    *,
    size_limit: int = PROTOBUF_LIMIT,
) -> List[Finding]:
    """Check an ONNX model (a ModelProto or a path) against a TensorRT target.

    Args:
        model_or_path: the model, or a path to a `.onnx` file (its size is checked first).
        target: a release ('8.5', '8.6', '10.3', '10.13'-'10.16', '11.4') or an `edge-build
            --target-trt` family ('10' checks every 10.x release, '11' checks 11.4).
        size_limit: bytes above which a single-file model cannot be parsed.

    Returns:
        Findings with node names; those with severity "error" would fail the device build.
    """
    onnx = require("onnx", purpose="linting ONNX models")
    releases = releases_for(target)
    if isinstance(model_or_path, (str, os.PathLike)):
        path = Path(model_or_path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise EdgeBuildError(f"{path}: cannot read the ONNX model: {exc}") from exc
        if size > size_limit:
            return [
                Finding(
                    "size",
                    ERROR,
                    f"{path.name} is {size} bytes, over the 2 GB protobuf "
                    "limit; save the weights as ONNX external data",
                    releases=tuple(releases),
                )
            ]
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and others: report, do not swallow
            raise EdgeBuildError(f"{path}: not a readable ONNX model: {exc}") from exc
    else:
        model = model_or_path
        if model.ByteSize() > size_limit:
            return [
                Finding(
                    "size",
                    ERROR,
                    "the model is over the 2 GB protobuf limit; save the "
                    "weights as ONNX external data",
                    releases=tuple(releases),
                )
            ]
    known = {
        schema.name for schema in onnx.defs.get_all_schemas_with_history() if schema.domain == ""
    }
    per_release = {r: _release_findings(model, RELEASES[r], known) for r in releases}
    qdq = check_qdq(model) + check_placement(model)
    if qdq:
        per_release = {r: f + qdq for r, f in per_release.items()}
    return _merge(per_release)


def errors(findings: List[Finding]) -> List[Finding]:
    return [f for f in findings if f.severity == ERROR]
