"""`edge-build`: checkpoint -> verified bundle, with progress and a one-screen summary.

Exit codes: 0 success; 1 a build error (bad input, failed check) with a one-line reason;
2 a usage error; 3 an unexpected internal error (rerun with --verbose for the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from edge.engine import device_command
from edge.errors import EdgeBuildError, UsageError
from edge.models import architecture_names
from edge.targets import DEFAULT_TARGET, TARGETS
from quantize.int8 import DEFAULT_RANGES, RANGES
from quantize.pipeline import (
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_TOLERANCE,
    PRECISIONS,
    BuildConfig,
    build_bundle,
)
from quantize.progress import Progress
from quantize.sensitivity import DEFAULT_NOISE_DRAWS
from quantize.simplify import SIMPLIFIERS

__all__ = ["main", "build_parser"]

DEMO_OUT = Path("build") / "demo"


def _class_names(text: str) -> List[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-build",
        description="Build a deployment bundle (verified ONNX + manifest) from a trained "
        "micro-expression model. With no arguments, builds the built-in demo into ./build/demo.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--arch",
        choices=architecture_names(),
        help="a registered architecture (default mmnet)",
    )
    which.add_argument(
        "--model",
        type=Path,
        metavar="FILE",
        help="bring your own model: an ONNX file or a torch.export program (.pt2), described "
        "by --spec (docs/byo.md)",
    )
    parser.add_argument(
        "--spec",
        type=Path,
        metavar="SPEC",
        help="YAML or JSON spec file of a --model: inputs and their frame roles, "
        "preprocessing, outputs, class names (docs/byo.md)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="state_dict file (.pt/.pth via torch.load(weights_only=True), or .safetensors); "
        "default: the built-in demo model",
    )
    parser.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        default="fp32",
        help="fp32, or fp16 / int8 built next to the FP32 reference",
    )
    parser.add_argument(
        "--quantizer",
        choices=["nncf", "ort"],
        default="nncf",
        help="INT8 post-training quantizer (default %(default)s)",
    )
    parser.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=DEFAULT_MAX_ACCURACY_DROP,
        help="INT8 accuracy budget, a fraction (default %(default)s = one point): UAR drop "
        "against FP32 on the labelled validation tiers (the worst tier counts), else "
        "1 - top-1 agreement. The build starts all-INT8 and keeps out of INT8 (in FP16) only "
        "the groups the measurement proves must stay out",
    )
    parser.add_argument(
        "--max-search-quantizations",
        type=int,
        default=16,
        help="when all-INT8 and the precision hints both miss the budget, refuse a per-group "
        "ranking that would take more quantizations than this (default %(default)s)",
    )
    parser.add_argument(
        "--noise-floor-draws",
        type=int,
        default=DEFAULT_NOISE_DRAWS,
        help="INT8 must also agree with FP32 on every validation tier at least as often as "
        "FP32 agrees with itself under 0.5 gray levels of input noise, averaged over this many "
        "seeded draws (default %(default)s); 0: judge by --max-accuracy-drop alone",
    )
    parser.add_argument(
        "--int8-placement",
        default="all",
        help="where INT8 Q/DQ goes: all (default) = where the quantizer puts it, also on gating "
        "Muls, frame differences, reductions and Concats (fastest on ONNX Runtime CPU); "
        "weighted = only on the inputs of Conv/Gemm/MatMul, TensorRT's and ModelOpt's placement "
        "(kept more FP32 decisions on the MMNet demo; docs/quantization.md)",
    )
    parser.add_argument(
        "--calib-ranges",
        default=None,
        help="how activation ranges are calibrated: nncf offers {}; ort offers {} "
        "(default: nncf {}, ort {}, chosen by benchmarks.bench_quant)".format(
            ", ".join(RANGES["nncf"]),
            ", ".join(RANGES["ort"]),
            DEFAULT_RANGES["nncf"],
            DEFAULT_RANGES["ort"],
        ),
    )
    parser.add_argument(
        "--calib-bias-correction",
        default="auto",
        help="NNCF's fast bias correction: on, off, or auto (default): on, and when that INT8 "
        "model misses the fidelity rule also off, keeping the better (on keeps more MMNet "
        "decisions, off cuts AFNet-M's logit error 14x; docs/quantization.md)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="bundle directory (default: build/demo for the demo, build/<checkpoint name> "
        "otherwise); an existing bundle there is replaced only after a successful build",
    )
    parser.add_argument(
        "--target-trt",
        choices=list(TARGETS),
        default=DEFAULT_TARGET,
        help="TensorRT version on the Jetson: 8.5 = JetPack 5 (opset 16), 8.6 = JetPack 6.0, "
        "10 = JetPack 6.1-7.2, 11 = JetPack 7.2.2+ (opset 17); default %(default)s",
    )
    parser.add_argument(
        "--simplifier",
        choices=SIMPLIFIERS,
        default="auto",
        help="auto = onnxsim if it works, else onnxslim (default)",
    )
    parser.add_argument(
        "--dynamic-batch",
        action="store_true",
        help="export with a dynamic batch axis (default: batch 1)",
    )
    parser.add_argument(
        "--class-names",
        type=_class_names,
        help="comma-separated class names overriding the variant's defaults",
    )
    parser.add_argument(
        "--parity-tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="max |logit difference| allowed between PyTorch and ONNX Runtime "
        "(default %(default)g)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic validation and calibration data"
    )
    parser.add_argument(
        "--val-samples",
        type=int,
        default=40,
        help="labelled synthetic clips stored in the bundle for accuracy checks "
        "(0: none; only for models with CASME II 5-class names)",
    )
    parser.add_argument(
        "--hard-val-samples",
        type=int,
        default=300,
        help="clips of the hard validation tier (0.3-1.5 px, head motion, light change, JPEG; "
        "docs/quantization.md); 0: none",
    )
    parser.add_argument(
        "--calib-data",
        default="synthetic",
        help="'synthetic', DATASET:ROOT (casme2, samm, mmew, casme3, generic), or a folder "
        "of .npz preprocessed tensors (arrays named like the model inputs, optional labels)",
    )
    parser.add_argument(
        "--calib-align",
        choices=["precropped", "mediapipe", "mediapipe-fast", "dlib"],
        default="precropped",
        help="how dataset frames are registered: precropped for registered crops (CASME II "
        "Cropped), mediapipe/dlib for raw frames, exactly as edge-run does",
    )
    parser.add_argument(
        "--no-annotation-fixes",
        dest="annotation_fixes",
        action="store_false",
        help="read DATASET:ROOT spreadsheets as they are, without the known annotation fixes "
        "(for a sheet release the fixes do not match)",
    )
    parser.add_argument(
        "--calib-samples",
        type=int,
        default=128,
        help="calibration samples to prepare (0: none; used by INT8)",
    )
    parser.add_argument(
        "--lint-only",
        action="store_true",
        help="export, simplify and lint for --target-trt, then stop without "
        "writing a bundle (exit 1 with the offending nodes)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks")
    return parser


def _macs_text(gmac: float) -> str:
    """GMAC, or MMAC for the small networks bring-your-own users deploy (0.2 MMAC, not 0.00)."""
    return f"{gmac:.2f} GMAC" if gmac >= 0.1 else f"{gmac * 1000:.2f} MMAC"


def _int8_lines(section) -> List[str]:
    """How much is INT8 and what the budget kept out of it, for the one-screen summary."""
    if not section or section.get("precision") != "int8" or not section.get("macs"):
        return []
    macs = section["macs"]
    lines = [
        "  int8 MACs   {:.1%} INT8, {:.1%} FP16, {:.1%} FP32 of {} (FP16 by {})".format(
            macs["int8_share"], macs["fp16_share"], macs["fp32_share"],
            _macs_text(macs["total_gmac"]), macs["fp16_by"],
        )
    ]  # fmt: skip
    budget = section.get("budget")
    if budget is None:
        lines.append("  placement   all INT8; accuracy budget NOT checked (no validation data)")
        return lines
    kept = [k["group"] for k in budget["kept_out_of_int8"]]
    bias = section.get("bias_correction") or {}
    chosen = ""
    if bias.get("used") is not None:
        chosen = ", bias correction {}{}".format(
            "on" if bias["used"] else "off", " by measurement" if "off" in bias.get("measured", {}) else ""
        )  # fmt: skip
    lines.append(
        "  placement   {}; drop {:.2%} within budget {:.2%} ({} search, {} quantization(s){})".format(
            "kept out of INT8: " + ", ".join(kept) if kept else "all INT8",
            budget["final"]["drop"], budget["max_accuracy_drop"], budget["search"],
            budget["evaluations"], chosen,
        )
    )  # fmt: skip
    floors = budget.get("noise_floor") or {}
    tiers = budget["final"].get("tiers", {})
    if floors:
        words = []
        for name, tier in tiers.items():
            floor = floors.get("tiers", {}).get(name)
            words.append(
                "{} agreement {:.1%} >= FP32 noise floor {:.1%}".format(
                    name, tier["agreement"], floor["mean"]
                )
                if floor
                else "{} agreement {:.1%}".format(name, tier["agreement"])
            )
        lines.append(
            "  fidelity    {} (floor: FP32 under {} gray levels of noise, mean of {} draws)".format(
                "; ".join(words), floors.get("gray_levels"), floors.get("draws")
            )
        )
    return lines


def _summary(result) -> str:
    m = result.manifest
    model = m["model"]
    parity = m["parity"]["final"]
    simp = m["simplification"]
    lines = [
        "",
        f"Bundle ready: {result.out}",
        "  model       {} {} ({} classes: {})".format(
            model["arch"], model["variant"], model["num_classes"], ", ".join(model["class_names"])
        ),
        "  weights     {}".format(
            "{} sha256 {} ({} file, described by {})".format(
                model["model_file"],
                model["model_file_sha256"][:12],
                model["model_format"],
                model["spec_file"],
            )
            if model.get("model_file")
            else model["checkpoint"] + " sha256 " + model["checkpoint_sha256"][:12]
            if model["checkpoint"]
            else "UNTRAINED seeded {} (seed {}): predictions are meaningless".format(
                model["arch"], model["seed"]
            )
        )
        + (" (built-in demo, trained on synthetic clips)" if model.get("demo_card") else ""),
        "  target      TensorRT {} (JetPack {}), ONNX opset {}".format(
            m["target"]["tensorrt"], m["target"]["jetpack"], m["target"]["opset"]
        ),
        "  onnx        {} ({} nodes, {} by {})".format(
            m["models"]["fp32"]["file"],
            m["models"]["fp32"]["nodes"],
            "simplified" if simp["tool"] != "none" else "not simplified",
            simp["tool"],
        ),
        "  parity      max |diff| {:.2e} vs {} (tolerance {:.0e}), top-1 agreement "
        "{:.0%}, executor {}".format(
            parity["max_abs_error"],
            "the ONNX file as given" if model.get("model_format") == "onnx" else "PyTorch",
            parity["tolerance"],
            parity["top1_agreement"],
            parity["candidate"],
        ),
    ]
    reduced = (
        m["models"].get(m["config"]["precision"]) if m["config"]["precision"] != "fp32" else None
    )
    if reduced is not None:
        measured = reduced.get("measured_vs_fp32")
        lines.append(
            "  {:<11} {} ({} nodes){}".format(
                m["config"]["precision"],
                reduced["file"],
                reduced["nodes"],
                "; top-1 agreement with FP32 {:.1%}{}, executor {}".format(
                    measured["top1_agreement"],
                    ", UAR {:+.1%}".format(measured["delta"]["uar"])
                    if measured.get("delta")
                    else "",
                    measured["executor"],
                )
                if measured
                else "; not measured (no validation split)",
            )
        )
    lines += _int8_lines(m.get("quantization"))
    lines += [
        "  lint        {} for TensorRT {}".format(
            "{} warning(s)".format(len(m["lint"]["findings"]))
            if m["lint"]["findings"]
            else "clean",
            m["target"]["tensorrt"],
        ),
        "  data        {}; {}".format(
            "validation {} clips, FP32 accuracy {:.1%} / UAR {:.1%}".format(
                m["validation"]["samples"],
                m["validation"]["fp32_metrics"]["accuracy"],
                m["validation"]["fp32_metrics"]["uar"],
            )
            if m["validation"]
            else "no validation set",
            "calibration {} samples ({})".format(
                m["calibration"]["samples"], m["calibration"]["source"]
            )
            if m["calibration"]
            else "no calibration set",
        ),
        f"  time        {sum(result.timings.values()):.1f} s",
        "  next        TensorRT is not available on this host: copy the bundle to the Jetson "
        "and run there:",
        "              " + device_command(result.out, m["config"]["precision"]),
    ]
    return "\n".join(lines)


def _config(args: argparse.Namespace, out: Path) -> BuildConfig:
    """The BuildConfig of the command line; raises UsageError before any work."""
    return BuildConfig(
        out=out,
        arch=args.arch or "mmnet",
        checkpoint=args.checkpoint,
        model=args.model,
        spec_file=args.spec,
        precision=args.precision,
        target_trt=args.target_trt,
        simplifier=args.simplifier,
        dynamic_batch=args.dynamic_batch,
        class_names=tuple(args.class_names) if args.class_names else None,
        parity_tolerance=args.parity_tolerance,
        seed=args.seed,
        lint_only=args.lint_only,
        val_samples=args.val_samples,
        hard_val_samples=args.hard_val_samples,
        calib_data=args.calib_data,
        calib_samples=args.calib_samples,
        quantizer=args.quantizer,
        calib_align=args.calib_align,
        annotation_fixes=args.annotation_fixes,
        max_accuracy_drop=args.max_accuracy_drop,
        int8_ranges=args.calib_ranges,
        int8_placement=args.int8_placement,
        int8_bias_correction=args.calib_bias_correction,
        max_search_quantizations=args.max_search_quantizations,
        noise_floor_draws=args.noise_floor_draws,
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    out = args.out
    if out is None and args.model is not None:
        out = Path("build") / args.model.stem
    elif out is None:
        out = DEMO_OUT if args.checkpoint is None else Path("build") / args.checkpoint.stem
    try:
        config = _config(args, out)
    except UsageError as exc:  # before any export or calibration
        parser.print_usage(sys.stderr)
        print(f"edge-build: error: {exc}", file=sys.stderr)
        return 2
    try:
        result = build_bundle(
            config, progress=Progress(8 if args.precision != "fp32" else 7, quiet=args.quiet)
        )
    except UsageError as exc:  # spec vs model checks: found before anything was written
        parser.print_usage(sys.stderr)
        print(f"edge-build: error: {exc}", file=sys.stderr)
        return 2
    except EdgeBuildError as exc:
        print(f"edge-build: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("edge-build: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --verbose
        if args.verbose:
            raise
        print(
            f"edge-build: internal error: {type(exc).__name__}: {exc} (rerun with --verbose for the traceback)",
            file=sys.stderr,
        )
        return 3
    if config.lint_only:
        print("lint: {} for TensorRT {}{}".format(
            "clean" if not result.lint else f"{len(result.lint)} warning(s)",
            config.target_trt,
            "".join("\n  " + str(f) for f in result.lint),
        ))  # fmt: skip
        return 0
    print(_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
