"""Host benchmark of the INT8 targets (issue 19), printed as figures from one run.

    .venv/bin/python -m benchmarks.bench_quant [--arch mmnet|afnet_m|famnet] [--calib-samples 256]

For the built-in demo of `--arch` it runs the default `edge-build --precision int8` (all-INT8
start, the accuracy budget's placement search) and times it; builds the same for the other
TensorRT targets to lint them; reports the share of MACs in INT8/FP16/FP32; measures FP32 and
INT8 on every validation tier of the bundle (agreement, UAR and its drop; each file as OrtRunner
runs it, INT8 Q/DQ lowered to integer kernels, as the build judges it) next to FP32's own decision stability under 0.5 gray levels of
input noise, averaged over the build's seeded draws, the floor INT8 fidelity is judged against;
times FP32 and INT8 through `OrtRunner`, interleaved so shared-machine load hits both alike; and
compares the calibration methods NNCF and ORT offer, all-INT8. A host script: it imports
`quantize` (allowed for `benchmarks/bench_*.py`).

`--only latency [--bundle DIR]` times FP32 against INT8 alone, on an existing bundle or a fresh
default build: INT8 as OrtRunner runs it (the CPU-lowered copy) and as written.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from calib.prepare import default_cache_dir, prepare_synthetic
from edge.bundle import Bundle
from edge.lint import errors, lint_onnx
from edge.metrics import classification_metrics, logit_errors, top1_agreement
from edge.noise import with_pixel_noise
from edge.runtime.ort import OrtRunner
from quantize.data import bundle_tiers
from quantize.int8 import quantize_int8
from quantize.macs import mac_shares
from quantize.sensitivity import DEFAULT_NOISE_DRAWS

__all__ = ["main"]

#: Gray levels (of 255) of Gaussian input noise under which FP32's own decisions are measured.
NOISE_LEVEL = 0.5
#: All-INT8 calibration variants compared (quantizer:activation ranges).
VARIANTS = (
    "nncf:minmax",
    "nncf:mean_minmax",
    "nncf:histogram",
    "nncf:mean_quantile",
    "ort:minmax",
    "ort:percentile",
)
Feeds = List[Dict[str, np.ndarray]]


def _tiers(bundle: Bundle) -> Dict[str, Tuple[Feeds, Optional[np.ndarray]]]:
    """Every labelled validation tier the bundle carries: name -> (feeds, labels)."""
    return {
        name: (vset.feeds(bundle.spec), vset.labels)
        for name, vset in bundle_tiers(bundle.root).items()
    }


def _logits(runner: OrtRunner, feeds: Feeds, output: str) -> np.ndarray:
    return np.concatenate([runner.infer(f)[output] for f in feeds])


def _interleaved_p50(runners: Dict[str, OrtRunner], feed, iterations: int) -> Dict[str, float]:
    """p50 latency per runner, timed round-robin so a load spike hits every model alike."""
    for runner in runners.values():  # warm-up
        for _ in range(3):
            runner.infer(feed)
    samples: Dict[str, List[float]] = {name: [] for name in runners}
    for _ in range(iterations):
        for name, runner in runners.items():
            start = time.perf_counter()
            runner.infer(feed)
            samples[name].append((time.perf_counter() - start) * 1e3)
    return {name: float(np.median(values)) for name, values in samples.items()}


def _build(argv: Sequence[str]) -> Tuple[Path, float]:
    from quantize.cli.build import main as build_main

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the summary; the figures follow
        code = build_main([*argv, "--quiet"])
    if code != 0:
        raise SystemExit(f"bench_quant: edge-build {' '.join(argv)} failed")
    return Path(argv[argv.index("--out") + 1]), time.perf_counter() - start


def _fidelity(tiers, class_names, reference: Dict[str, np.ndarray], logits: Dict[str, np.ndarray]):
    out = {}
    for name, (_, labels) in tiers.items():
        row: Dict[str, Any] = {
            "agreement": top1_agreement(reference[name], logits[name]),
            "mean_abs_error": logit_errors(reference[name], logits[name])["mean_abs_error"],
        }
        if labels is not None:
            ref_uar = classification_metrics(reference[name], labels, class_names)["uar"]
            row["uar"] = classification_metrics(logits[name], labels, class_names)["uar"]
            row["uar_drop"] = ref_uar - row["uar"]
        out[name] = row
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="mmnet", choices=["mmnet", "afnet_m", "famnet"])
    parser.add_argument("--calib-samples", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hard-val-samples", type=int, default=300, help="clips of the hard validation tier"
    )
    parser.add_argument(
        "--noise-draws",
        type=int,
        default=DEFAULT_NOISE_DRAWS,
        help="seeded draws FP32's noise floor is averaged over (the build's default)",
    )
    parser.add_argument(
        "--targets", default="10,11,8.5", help="TensorRT targets to build and lint (first: timed)"
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="all-INT8 calibration variants to compare, quantizer:ranges (empty: none)",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument(
        "--only",
        choices=["all", "latency"],
        default="all",
        help="latency: only FP32 vs INT8 p50 through OrtRunner (no tiers, variants, other targets)",
    )
    parser.add_argument(
        "--bundle",
        type=Path,
        help="with --only latency: time this `edge-build --precision int8` bundle, build nothing",
    )
    args = parser.parse_args(argv)
    if args.bundle is not None and args.only != "latency":
        parser.error("--bundle needs --only latency (the full run builds its own bundles)")
    if args.bundle is not None and not (args.bundle / "manifest.json").is_file():
        parser.error(f"--bundle {args.bundle}: no manifest.json there (not an edge-build bundle)")
    if args.only == "latency":
        return _latency_only(args)

    work = Path(tempfile.mkdtemp(prefix="bench-quant-"))
    targets = [t for t in args.targets.split(",") if t]
    common = ["--arch", args.arch, "--calib-samples", str(args.calib_samples), "--seed",
              str(args.seed), "--hard-val-samples", str(args.hard_val_samples),
              "--noise-floor-draws", str(args.noise_draws)]  # fmt: skip
    builds: Dict[str, Dict[str, Any]] = {}
    for target in targets:
        out, seconds = _build(
            [*common, "--precision", "int8", "--target-trt", target, "--out", str(work / target)]
        )
        manifest = json.loads((out / "manifest.json").read_text())
        section = manifest["quantization"]
        findings = lint_onnx(out / section["file"], target)
        builds[target] = {
            "seconds": seconds,
            "macs": section["macs"],
            "budget": section["budget"],
            "lint_errors": len(errors(findings)),
            "lint_warnings": len(findings) - len(errors(findings)),
            "kept": section["kept_in_higher_precision"],
        }
    main_target = targets[0]
    bundle = Bundle.load(work / main_target)
    spec = bundle.spec
    output = spec.outputs[0].name
    tiers = _tiers(bundle)
    fp32_path, int8_path = bundle.onnx_path("fp32"), bundle.onnx_path("int8")
    calibration = prepare_synthetic(
        spec, args.calib_samples, seed=args.seed, cache_dir=default_cache_dir()
    )

    models: Dict[str, Path] = {"fp32": fp32_path, "default int8": int8_path}
    variant_meta: Dict[str, Dict[str, Any]] = {}
    for variant in [v for v in args.variants.split(",") if v]:
        quantizer, ranges = variant.split(":")
        path = work / f"all-int8-{quantizer}-{ranges}.onnx"
        start = time.perf_counter()
        quantize_int8(
            fp32_path, path, calibration, quantizer=quantizer, ranges=ranges, seed=args.seed
        )
        variant_meta[variant] = {"quantize_s": time.perf_counter() - start}
        models[variant] = path

    logits: Dict[str, Dict[str, np.ndarray]] = {}
    for (
        name,
        path,
    ) in models.items():  # fidelity: each file as OrtRunner runs it, as the build judges it
        with OrtRunner(str(path), threads=args.threads) as runner:
            logits[name] = {t: _logits(runner, feeds, output) for t, (feeds, _) in tiers.items()}
            if name == "fp32":
                noisy = {
                    t: [
                        _logits(runner, with_pixel_noise(feeds, spec.preprocessing.std,
                                                         NOISE_LEVEL, seed=args.seed + d), output)
                        for d in range(args.noise_draws)
                    ]
                    for t, (feeds, _) in tiers.items()
                }  # fmt: skip
    runners = {name: OrtRunner(str(path), threads=args.threads) for name, path in models.items()}
    for runner in runners.values():
        runner.__enter__()
    try:
        first_feeds = next(iter(tiers.values()))[0]
        p50 = _interleaved_p50(runners, first_feeds[0], args.iterations)
        executor = runners["default int8"].executor
    finally:
        for runner in runners.values():
            runner.__exit__(None, None, None)

    reference = logits["fp32"]
    floor_draws = {t: [top1_agreement(reference[t], n) for n in noisy[t]] for t in tiers}
    floor = {t: float(np.mean(draws)) for t, draws in floor_draws.items()}
    rows = {}
    for name in models:
        model_macs = mac_shares(_load(models[name]), fp16_flag=True).to_dict()
        rows[name] = {
            "speedup": p50["fp32"] / p50[name],
            "p50_ms": p50[name],
            "int8_share": model_macs["int8_share"],
            "tiers": _fidelity(tiers, spec.class_names, reference, logits[name]),
            **variant_meta.get(name, {}),
        }
    fp32_metrics = {
        t: classification_metrics(reference[t], labels, spec.class_names)
        for t, (_, labels) in tiers.items()
        if labels is not None
    }
    _print(args, main_target, builds, tiers, rows, floor_draws, fp32_metrics, len(calibration),
           executor)  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "builds": builds,
                    "rows": rows,
                    "noise_floor": floor,
                    "noise_floor_draws": floor_draws,
                    "executor": executor,
                    "fp32": {
                        t: {"uar": m["uar"], "accuracy": m["accuracy"]}
                        for t, m in fp32_metrics.items()
                    },
                },
                indent=2,
            )  # fmt: skip
        )
    return 0


def _latency_only(args: argparse.Namespace) -> int:
    """FP32 against the INT8 file, interleaved: as OrtRunner runs it and as written."""
    if args.bundle is not None:
        root = args.bundle
    else:
        target = args.targets.split(",")[0]
        root = Path(tempfile.mkdtemp(prefix="bench-quant-")) / target
        _build(["--arch", args.arch, "--calib-samples", str(args.calib_samples), "--seed",
                str(args.seed), "--precision", "int8", "--target-trt", target, "--out", str(root)])  # fmt: skip
    bundle = Bundle.load(root)
    feeds = next(iter(_tiers(bundle).values()))[0]
    runners = {
        "fp32": OrtRunner(str(bundle.onnx_path("fp32")), threads=args.threads),
        "int8": OrtRunner(str(bundle.onnx_path("int8")), threads=args.threads),
        "int8 as written": OrtRunner(
            str(bundle.onnx_path("int8")), threads=args.threads, lower_qdq=False
        ),
    }
    for runner in runners.values():
        runner.__enter__()
    try:
        p50 = _interleaved_p50(runners, feeds[0], args.iterations)
        executor = runners["int8"].executor
    finally:
        for runner in runners.values():
            runner.__exit__(None, None, None)
    rows = {name: {"p50_ms": ms, "speedup": p50["fp32"] / ms} for name, ms in p50.items()}
    print(f"{bundle.spec.arch} bundle {root}; "
          f"ORT CPU {args.threads} thread(s), {args.iterations} interleaved rounds")  # fmt: skip
    for name, row in rows.items():
        print(f"  {name:<16}{row['p50_ms']:>8.1f} ms p50 {row['speedup']:>6.2f}x FP32")
    print(f"executor (int8): {executor}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "executor": executor}, indent=2))
    return 0


def _load(path: Path) -> Any:
    import onnx

    return onnx.load(str(path))


def _print(args, main_target, builds, tiers, rows, floor_draws, fp32_metrics, n_calib, executor):
    floor = {t: float(np.mean(draws)) for t, draws in floor_draws.items()}
    print(
        f"{args.arch} demo, {n_calib} calibration samples, tiers: "
        + ", ".join(f"{t} {len(feeds)} clips" for t, (feeds, _) in tiers.items())
        + f"; ORT CPU {args.threads} thread(s)"
    )
    print("default `edge-build --precision int8` per TensorRT target:")
    for target, b in builds.items():
        macs = b["macs"]
        budget = b["budget"] or {}
        print(
            f"  TensorRT {target:<4} {b['seconds']:6.1f} s   MACs {macs['int8_share']:.1%} INT8 / "
            f"{macs['fp16_share']:.1%} FP16 / {macs['fp32_share']:.1%} FP32 of "
            f"{macs['total_gmac']:.2f} GMAC   lint {b['lint_errors']} error(s), "
            f"{b['lint_warnings']} warning(s)   kept out of INT8: {b['kept'] or 'nothing'} "
            f"({budget.get('search', 'no budget')}, {budget.get('evaluations', 0)} quantization(s))"
        )
    for t, m in fp32_metrics.items():
        print(
            f"FP32 on the {t} tier: accuracy {m['accuracy']:.3f}, UAR {m['uar']:.3f}; "
            f"keeps {floor[t]:.3f} of its decisions under {NOISE_LEVEL} gray levels of noise "
            f"(mean of {len(floor_draws[t])} draws: "
            + ", ".join(f"{v:.3f}" for v in floor_draws[t])
            + ")"
        )
    names = list(tiers)
    header = f"{'model':<22}{'speed-up':>9}{'p50 ms':>8}{'INT8 MACs':>10}"
    for t in names:
        header += f"{t + ' agree':>15}{'UAR drop':>9}"
    print(header + f"{'quant s':>9}")
    for name, row in rows.items():
        line = f"{name:<22}{row['speedup']:>8.2f}x{row['p50_ms']:>8.1f}{row['int8_share']:>10.1%}"
        for t in names:
            tier = row["tiers"][t]
            line += f"{tier['agreement']:>15.3f}{tier.get('uar_drop', float('nan')):>+9.3f}"
        print(line + (f"{row['quantize_s']:>9.1f}" if "quantize_s" in row else f"{'':>9}"))
    print(f"speed: {executor} (speed on a Jetson comes from TensorRT, not from this); "
          "agreement: each file as OrtRunner runs it (INT8 Q/DQ lowered for the CPU)")  # fmt: skip
    default = rows["default int8"]["tiers"]
    verdicts = []
    if "standard" in default:
        agreement = default["standard"]["agreement"]
        verdicts.append(
            f"standard agreement {agreement:.3f} (target >= 0.99: "
            f"{'met' if agreement >= 0.99 else 'MISSED'})"
        )
    if "hard" in default:
        agreement = default["hard"]["agreement"]
        verdicts.append(
            f"hard agreement {agreement:.3f} vs FP32 noise floor {floor['hard']:.3f} "
            f"({'met' if agreement >= floor['hard'] else 'MISSED'})"
        )
    drops = [t.get("uar_drop") for t in default.values() if t.get("uar_drop") is not None]
    if drops:
        verdicts.append(f"worst UAR drop {max(drops):+.3f} (target <= 0.010)")
    print("default INT8: " + "; ".join(verdicts))


if __name__ == "__main__":
    sys.exit(main())
