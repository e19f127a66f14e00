"""`edge-engine`: the device-side command of a bundle, run on the Jetson.

    edge-engine check --bundle DIR [--precisions fp32,int8] [--out DIR]
    edge-engine build --bundle DIR --precision {fp32,fp16,int8} [...]

`check` is the one thing a Jetson owner runs. For every precision in the bundle it builds the
TensorRT engine on this device (recorded in the bundle, as `build` does), then runs edge-bench's
measurement on those engines: outputs against the bundle's reference logits (parity), the
validation set against the FP32 engine (top-1 agreement, accuracy, UAR, UF1, logit error),
latency by trtexec's rules (200 ms warm-up, then at least 10 inferences and at least 3 s;
median and p90/p95/p99 of host latency, with the CUDA-event H2D / GPU compute / D2H split),
the power mode, clocks and tegrastats power. It writes one JSON + Markdown report, a few
hundred kB at most, that `edge-bench report` renders (HTML with plots) on the host.

Runs on the device's system Python (3.8+) with numpy, TensorRT and cuda-python; this module sits
in `benchmarks` because it uses edge-bench's measurement (`edge` never imports `benchmarks`).
Exit codes: 0 every engine built and matched its references; 1 a build or check failed (the
report says which), or TensorRT, cuda-python or the CUDA driver is missing (one line naming what
to install); 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from benchmarks.cli import NOISE_GRAY
from benchmarks.cli import run as bench_run
from benchmarks.report import write_reports
from edge.bundle import Bundle
from edge.cli import engine as engine_cli
from edge.engine import PRECISIONS, engine_from_bundle, probe_device
from edge.engine.device import load_cudart, load_tensorrt, require_cuda_driver
from edge.errors import EdgeBuildError

__all__ = ["TRTEXEC_RULES", "build_parser", "check", "main"]

log = logging.getLogger(__name__)

#: trtexec 10.x defaults (sampleOptions.h): --warmUp=200 ms, --iterations=10, --duration=3 s.
TRTEXEC_RULES = {"warmup_ms": 200.0, "iterations": 10, "duration_s": 3.0}
#: Latency samples kept per precision in the report (evenly spaced): enough for the host's
#: distribution plots, small enough to send back; the statistics use every sample.
MAX_SAMPLES = 1000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-engine",
        description="Build and check a bundle's TensorRT engines on this device.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{check,build}")
    commands.required = True
    check_parser = commands.add_parser(
        "check",
        help="build every precision's engine, check it against the bundle and time it",
        description="Build every precision's engine on this device, compare its outputs with the "
        "bundle's references and validation set, time it by trtexec's rules, and write a JSON + "
        "Markdown report (render it on the host with: edge-bench report REPORT.json).",
    )
    check_parser.add_argument("--bundle", type=Path, required=True, help="bundle directory")
    check_parser.add_argument(
        "--precisions", default=None, help="comma-separated; default: every model in the bundle"
    )
    check_parser.add_argument(
        "--out", type=Path, default=None, help="report directory (default: <bundle>-check)"
    )
    check_parser.add_argument(
        "--iterations",
        type=int,
        default=TRTEXEC_RULES["iterations"],
        help="at least this many timed runs",
    )
    check_parser.add_argument(
        "--duration",
        type=float,
        default=TRTEXEC_RULES["duration_s"],
        help="and at least this many seconds",
    )
    check_parser.add_argument(
        "--warmup-ms",
        type=float,
        default=TRTEXEC_RULES["warmup_ms"],
        help="warm-up time per precision",
    )
    check_parser.add_argument("--workspace-mib", type=int, help="workspace limit in MiB")
    check_parser.add_argument(
        "--dla-core", type=int, help="build for this DLA core (GPU fallback on)"
    )
    check_parser.add_argument("--opt-level", type=int, help="builder optimization level 0-5 (8.6+)")
    check_parser.add_argument(
        "--no-timing-cache", action="store_true", help="neither read nor store the timing cache"
    )
    check_parser.add_argument("-v", "--verbose", action="store_true")
    build_parser_ = commands.add_parser(
        "build", help="build one precision's engine (what `python3 -m edge.cli.engine` does)"
    )
    engine_cli.add_arguments(build_parser_)
    return parser


def _usage_errors(args: argparse.Namespace) -> Optional[str]:
    if args.iterations < 1:
        return "--iterations must be >= 1"
    if args.duration < 0 or args.warmup_ms < 0:
        return "--duration and --warmup-ms must not be negative"
    if args.precisions is not None:
        unknown = [p for p in args.precisions.split(",") if p.strip() not in PRECISIONS]
        if unknown or not args.precisions.strip():
            return "--precisions: unknown {}; choose from {}".format(
                ", ".join(unknown) or "(empty)", ", ".join(PRECISIONS)
            )
    return None


def _thin(samples: List[float]) -> List[float]:
    if len(samples) <= MAX_SAMPLES:
        return samples
    step = len(samples) / MAX_SAMPLES
    return [samples[int(i * step)] for i in range(MAX_SAMPLES)]


def check(
    args: argparse.Namespace,
    argv: Sequence[str] = (),
    *,
    trt: Any = None,
    cudart: Any = None,
    device: Any = None,
) -> Dict[str, Any]:
    """Build and check every requested precision; returns the report document.

    `trt`, `cudart` and `device` are injected in tests; by default JetPack's `tensorrt`,
    cuda-python's runtime (after checking the driver answers) and `probe_device()`.

    Raises:
        MissingDependencyError: TensorRT, cuda-python or the CUDA driver is missing.
        EdgeBuildError: the bundle is damaged, or its FP32 engine (the reference) failed.
    """
    if trt is None:
        trt = load_tensorrt()
    if cudart is None:
        cudart = load_cudart()
        require_cuda_driver(cudart)
    if device is None:
        device = probe_device(cudart=cudart)
    bundle = Bundle.load(args.bundle)
    models = bundle.manifest.get("models") or {}
    wanted = [p.strip() for p in args.precisions.split(",")] if args.precisions else list(models)
    if "fp32" in models and "fp32" not in wanted:
        wanted.insert(0, "fp32")  # the reference every other precision is compared with
    missing = [p for p in wanted if p not in models]
    if missing:
        raise EdgeBuildError(
            "{}: no {} model in this bundle (has: {})".format(
                args.bundle, ", ".join(missing), ", ".join(models)
            )
        )
    engines: List[Dict[str, Any]] = []
    for precision in wanted:
        print(f"building the {precision} engine ...", flush=True)
        try:
            entry = engine_from_bundle(
                args.bundle,
                precision,
                trt=trt,
                device=device,
                workspace_mib=args.workspace_mib,
                optimization_level=args.opt_level,
                dla_core=args.dla_core,
                timing_cache=not args.no_timing_cache,
            )
        except EdgeBuildError as exc:
            log.warning("%s engine failed: %s", precision, exc)
            engines.append({"precision": precision, "built": False, "error": str(exc)})
            continue
        engines.append(
            {
                "precision": precision,
                "built": True,
                "file": entry["file"],
                "bytes": entry["bytes"],
                "build_s": entry["build_s"],
                "key": entry["key"],
                "gpu_fallback_layers": entry["gpu_fallback_layers"],
            }
        )
    failed = [e for e in engines if not e["built"]]
    if any(e["precision"] == "fp32" for e in failed):
        raise EdgeBuildError(
            "the fp32 engine, the reference of every check, did not build: "
            + next(e["error"] for e in failed if e["precision"] == "fp32")
        )
    built = [e["precision"] for e in engines if e["built"]]
    if not built:
        raise EdgeBuildError("no engine built: " + "; ".join(e["error"] for e in failed))

    settings = argparse.Namespace(
        bundle=args.bundle,
        precisions=",".join(built),
        backend="trt",
        data=None,
        iterations=args.iterations,
        duration=args.duration,
        warmup=0,
        warmup_seconds=args.warmup_ms / 1000.0,
        batch_sizes=[1],
        threads=None,
        noise_gray=NOISE_GRAY,
    )
    options = {"trt_module": trt, "cudart": cudart, "device": device}
    result = bench_run(settings, argv, runner_options=options, command="edge-engine")
    for entry in result["precisions"]:
        for lat in entry["latency"]:
            lat["samples_ms"] = _thin(lat["samples_ms"])
    result["engines"] = engines
    result["settings"]["timing_rules"] = (
        f"trtexec: warm-up {args.warmup_ms:g} ms, then >= {args.iterations} inferences and >= {args.duration:g} s; median, p90/p95/p99; "
        "host latency = H2D + GPU compute + D2H (CUDA events)"
    )
    result["tensorrt"] = str(getattr(trt, "__version__", "unknown"))
    result["skipped"] += [f"{e['precision']} engine: {e['error']}" for e in failed]
    result["passed"] = bool(result["passed"]) and not failed
    return result


def _print_summary(result: Dict[str, Any], written: Dict[str, Path]) -> None:
    for entry in result["precisions"]:
        lat = next((x for x in entry["latency"] if x["batch"] == 1), None)
        acc = entry.get("accuracy") or {}
        parts = [
            entry["precision"],
            "parity " + {True: "ok", False: "FAILED", None: "n/a"}[entry["parity"]["passed"]],
        ]
        if acc:
            parts.append("top-1 agreement vs fp32 {:.1%}".format(acc["top1_agreement"]))
            if acc.get("candidate"):
                parts.append("UAR {:.1%}".format(acc["candidate"]["uar"]))
        if lat:
            parts.append("p50 {:.3f} ms, p99 {:.3f} ms".format(lat["p50_ms"], lat["p99_ms"]))
        print("  " + " · ".join(parts))
    for line in result["skipped"]:
        print(f"  skipped  {line}")
    for kind, path in written.items():
        print(f"{kind:<5} {path}")
    print("render on the host: edge-bench report {}".format(written.get("json", "REPORT.json")))


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "build":
        return engine_cli.main(argv[1:], prog="edge-engine build")
    problem = _usage_errors(args)
    if problem:
        parser.error(problem)  # exit 2 before any work
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="edge-engine: %(levelname)s: %(message)s",
    )
    start = time.perf_counter()
    try:
        result = check(args, argv)
        bundle_dir = Path(args.bundle).resolve()
        out = args.out if args.out is not None else bundle_dir.parent / (bundle_dir.name + "-check")
        written = write_reports(result, out, formats=["json", "md"], stem="check")
    except EdgeBuildError as exc:
        print(f"edge-engine: error: {exc}", file=sys.stderr)
        return 1
    _print_summary(result, written)
    print(
        f"checked in {time.perf_counter() - start:.1f} s: {'passed' if result['passed'] else 'FAILED'}"
    )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
