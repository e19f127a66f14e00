"""The reduced-precision step of a build: FP16 or INT8 ONNX next to the FP32 one, linted for the
target TensorRT and measured against FP32 on the validation split."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from edge._lazy import require
from edge.bundle import REDUCED_FILES
from edge.errors import CalibrationError, EdgeBuildError
from edge.export import op_histogram
from quantize.measure import measure_against_fp32

__all__ = ["reduce_precision"]


def _measure(path: Path, spec, validation, fp32_logits) -> Optional[Dict[str, Any]]:
    if validation is None:
        return None
    return measure_against_fp32(
        path, fp32_logits, validation.feeds(spec), spec, labels=validation.labels
    )


def _accuracy_drop(measured: Dict[str, Any]) -> float:
    """The budget's measure: UAR drop when labels exist, else 1 - top-1 agreement."""
    if measured.get("delta"):
        return max(0.0, -float(measured["delta"]["uar"]))
    return 1.0 - float(measured["top1_agreement"])


def reduce_precision(
    config,
    spec,
    trt,
    fp32_path: Path,
    staging: Path,
    *,
    validation,
    fp32_logits: Optional[np.ndarray],
    calibration,
    lint,
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Build `config.precision` (fp16/int8); return its `models` entry and `quantization` section."""
    precision = config.precision
    out = staging / REDUCED_FILES[precision]
    if precision == "fp16":
        from quantize.fp16 import fp16_from_onnx

        result = fp16_from_onnx(fp32_path, out, opset=trt.opset)
        section: Dict[str, Any] = {"precision": "fp16", **result.to_dict()}
    else:
        if calibration is None:
            raise CalibrationError("INT8 needs calibration data: --calib-samples must be > 0")
        section = _int8(config, spec, trt, fp32_path, out, validation, fp32_logits, calibration)
    findings = lint(out, trt.name)
    measured = _measure(out, spec, validation, fp32_logits)
    if (
        precision == "int8"
        and config.max_accuracy_drop is not None
        and measured is not None
        and _accuracy_drop(measured) > config.max_accuracy_drop + 1e-12
    ):
        raise EdgeBuildError(
            f"INT8 accuracy drop {_accuracy_drop(measured):.2%} exceeds --max-accuracy-drop {config.max_accuracy_drop:.2%} on the validation "
            "split"
        )
    onnx = require("onnx", purpose="reading the reduced-precision model")
    model = onnx.load(str(out))
    entry = {
        "file": out.name,
        "precision": precision,
        "nodes": len(model.graph.node),
        "ops": op_histogram(model),
        "measured_vs_fp32": measured,
        "lint": [f.to_dict() for f in findings],
    }
    section["calibration"] = calibration.summary() if calibration is not None else None
    return entry, section


def _int8(config, spec, trt, fp32_path, out, validation, fp32_logits, calibration):
    from quantize.int8 import quantize_int8

    hints = config.int8_exclude if config.int8_exclude is not None else spec.precision_hints
    exclude = tuple(hints)
    budget = None
    if config.max_accuracy_drop is not None:
        if validation is None:
            raise CalibrationError(
                "--max-accuracy-drop needs a labelled validation split; this model's classes "
                "have no synthetic data"
            )
        from quantize.sensitivity import candidate_groups, make_evaluator, meet_budget

        onnx = require("onnx", purpose="ranking INT8 sensitivity")
        fp32_model = onnx.load(str(fp32_path))
        evaluate = make_evaluator(
            fp32_model,
            calibration.feeds(),
            validation.feeds(spec),
            quantizer=config.quantizer,
            labels=validation.labels,
            class_names=spec.class_names,
        )
        budget = meet_budget(
            config.max_accuracy_drop, list(candidate_groups(fp32_model)), evaluate, start=exclude
        )
        exclude = exclude + budget.excluded
    result = quantize_int8(
        fp32_path, out, calibration, quantizer=config.quantizer, exclude=exclude,
        opset=trt.opset, seed=config.seed,
    )  # fmt: skip
    section = {"precision": "int8", "kept_in_higher_precision": list(exclude), **result.to_dict()}
    section["budget"] = budget.to_dict() if budget is not None else None
    return section
