"""The reduced-precision step of a build: FP16 or INT8 ONNX next to the FP32 one, linted for the
target TensorRT and measured against FP32 on the validation split."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from calib.prepare import default_cache_dir
from edge._lazy import require
from edge.bundle import REDUCED_FILES
from edge.errors import CalibrationError, EdgeBuildError
from edge.export import op_histogram
from edge.noise import noisy_feeds
from quantize.measure import measure_against_fp32

__all__ = ["reduce_precision"]

log = logging.getLogger(__name__)

#: Input noise (gray levels of 255) under which FP32's own decision stability sets the floor the
#: INT8 placement search judges each validation tier against (issue 19).
NOISE_FLOOR_GRAY_LEVELS = 0.5


def _measure(path: Path, spec, validation, fp32_logits, logits=None) -> Optional[Dict[str, Any]]:
    if validation is None:
        return None
    return measure_against_fp32(
        path, fp32_logits, validation.feeds(spec), spec, labels=validation.labels, logits=logits
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
    report=None,
    extra_tiers=None,
    extra_logits=None,
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Build `config.precision` (fp16/int8); return its `models` entry and `quantization` section.

    `extra_tiers`: more validation tiers by name (`hard`), `extra_logits` their FP32 logits.
    """
    precision = config.precision
    out = staging / REDUCED_FILES[precision]
    written_logits = None
    if precision == "fp16":
        from quantize.fp16 import fp16_from_onnx

        result = fp16_from_onnx(fp32_path, out, opset=trt.opset)
        section: Dict[str, Any] = {"precision": "fp16", **result.to_dict()}
    else:
        if calibration is None:
            raise CalibrationError("INT8 needs calibration data: --calib-samples must be > 0")
        references = dict(extra_logits or {})
        if fp32_logits is not None:
            references["standard"] = fp32_logits
        section, written_logits = _int8(
            config, spec, trt, fp32_path, out, validation, calibration, report,
            extra_tiers or {}, references,
        )  # fmt: skip
    findings = lint(out, trt.name)
    measured = _measure(out, spec, validation, fp32_logits, written_logits)
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


def _usable_hints(model: Any, hints: Tuple[str, ...]) -> Tuple[str, ...]:
    """The precision hints that name nodes of this graph (a variant may lack some)."""
    from quantize.int8 import resolve_nodes

    usable = []
    for hint in hints:
        try:
            resolve_nodes(model, [hint])
        except EdgeBuildError:
            log.info("precision hint %s matches no node of this model; not used", hint)
            continue
        usable.append(hint)
    return tuple(usable)


def _int8(
    config, spec, trt, fp32_path, out, validation, calibration, report, extra_tiers, references
):
    """All-INT8 first; keep out of INT8 only what the fidelity rule proves it must.

    Returns the `quantization` section and the standard tier's logits of the file as written
    when the search already measured exactly that file (None when it changed afterwards).
    """
    from quantize.int8 import Int8Result, calibration_feeds, quantize_model
    from quantize.macs import mac_shares
    from quantize.sensitivity import (
        candidate_groups,
        groups_reading_int8,
        make_evaluator,
        meet_budget,
    )

    onnx = require("onnx", purpose="INT8 quantization")
    fp32_model = onnx.load(str(fp32_path))
    forced = tuple(config.int8_exclude or ())
    feeds = calibration_feeds(calibration, config.seed)
    budget = None
    bias_choice: Dict[str, Any] = {"mode": config.int8_bias_correction}
    if validation is None:
        log.warning(
            "no validation data: the INT8 model is all-INT8 and the accuracy budget is unchecked"
        )
        quantized, details = quantize_model(
            fp32_model, feeds, quantizer=config.quantizer, exclude=forced, opset=trt.opset,
            ranges=config.int8_ranges, placement=config.int8_placement,
            bias_correction=config.int8_bias_correction != "off",
        )  # fmt: skip
    else:
        tier_sets = {"standard": validation, **extra_tiers}
        tier_feeds = {name: tier.feeds(spec) for name, tier in tier_sets.items()}
        # Pixel noise for the noise floor; flow models get it on the tier's frames, before the
        # flow (edge.noise).
        evaluate = make_evaluator(
            fp32_model,
            feeds,
            tier_feeds["standard"],
            quantizer=config.quantizer,
            labels=validation.labels,
            class_names=spec.class_names,
            extra_tiers={
                name: (tier_feeds[name], tier.labels) for name, tier in extra_tiers.items()
            },
            settings={
                "ranges": config.int8_ranges,
                "opset": trt.opset,
                "placement": config.int8_placement,
                "bias_correction": config.int8_bias_correction != "off",
            },
            report=report,
            noise=(
                (
                    lambda tier, feeds, draw: noisy_feeds(
                        spec,
                        feeds,
                        tier_sets[tier].frames,
                        NOISE_FLOOR_GRAY_LEVELS,
                        seed=config.seed + draw,
                    )
                )
                if config.noise_floor_draws
                else None
            ),
            noise_draws=config.noise_floor_draws,
            reference=references,
            cache_dir=config.cache_dir if config.cache_dir is not None else default_cache_dir(),
            noise_id=f"gaussian {NOISE_FLOOR_GRAY_LEVELS} gray levels, seed {config.seed} + draw",
        )
        if config.int8_bias_correction == "auto":
            evaluate, bias_choice = _choose_bias_correction(
                evaluate, forced, config.max_accuracy_drop, report
            )
        # the all-INT8 model (cached: meet_budget measures it first) tells which groups hold INT8
        all_int8, _ = evaluate.quantized(forced)
        budget = meet_budget(
            config.max_accuracy_drop,
            groups_reading_int8(candidate_groups(fp32_model), all_int8),
            evaluate,
            start=forced,
            seed=_usable_hints(fp32_model, tuple(spec.precision_hints)),
            max_quantizations=config.max_search_quantizations,
        )
        quantized, details = evaluate.quantized(forced + budget.excluded)
    onnx.save(quantized, str(out))
    written = None
    if budget is not None and trt.precision_flags:  # the file is the model the search ran
        written = evaluate.logits.get(forced + budget.excluded, {}).get("standard")
    result = Int8Result.from_details(out, config.quantizer, details, quantized, len(feeds))
    regions = None
    if not trt.precision_flags:  # strongly typed TensorRT: FP16 must be in the ONNX
        from quantize.mixed import fp16_regions

        regions = fp16_regions(out, out, opset=trt.opset)
        quantized = onnx.load(str(out))
    shares = mac_shares(quantized, fp16_flag=trt.precision_flags)
    kept = list(forced + (budget.excluded if budget is not None else ()))
    section = {"precision": "int8", "kept_in_higher_precision": kept, **result.to_dict()}
    section["macs"] = shares.to_dict()
    section["outside_int8"] = (
        "FP16 by the builder flag (INT8 + FP16 engine), FP32 in the ONNX"
        if trt.precision_flags
        else "FP16 regions in the ONNX (LayerNorm and Softmax FP32)"
    )
    if regions is not None:
        section["fp16_regions"] = {
            "kept_fp32_nodes": len(regions.kept_nodes),
            "casts_added": regions.casts_added,
            "clamped_initializers": len(regions.clamped),
        }
    section["bias_correction"] = {
        **bias_choice,
        "used": result.settings.get("fast_bias_correction"),
    }
    section["budget"] = budget.to_dict() if budget is not None else None
    if budget is not None:
        section["budget"]["seconds"] = {k: round(v, 2) for k, v in evaluate.seconds.items()}
    if section["budget"] is not None and section["budget"]["noise_floor"] is not None:
        section["budget"]["noise_floor"].update(
            gray_levels=NOISE_FLOOR_GRAY_LEVELS,
            seeds=[config.seed + d for d in range(section["budget"]["noise_floor"]["draws"])],
        )
    return section, written


def _choose_bias_correction(evaluate, forced, max_accuracy_drop, report):
    """`auto`: all-INT8 with NNCF's fast bias correction; when that misses the fidelity rule,
    also without, and the search goes on with the one whose excess over the rule is smaller.

    Returns the evaluator to search with and the manifest's record of the choice.
    """
    with_correction = evaluate(forced)
    record: Dict[str, Any] = {"mode": "auto", "measured": {"on": with_correction.to_dict()}}
    if with_correction.meets(max_accuracy_drop):
        record["chosen"] = "on"
        return evaluate, record
    without = evaluate.variant(bias_correction=False)
    measured = without(forced)
    record["measured"]["off"] = measured.to_dict()
    better = measured.excess(max_accuracy_drop) < with_correction.excess(max_accuracy_drop)
    record["chosen"] = "off" if better else "on"
    line = "bias correction {}: all-INT8 excess over the rule {:.4f} with, {:.4f} without".format(
        record["chosen"], with_correction.excess(max_accuracy_drop),
        measured.excess(max_accuracy_drop),
    )  # fmt: skip
    log.info(line)
    if report is not None:
        report(line)
    return (without if better else evaluate), record
