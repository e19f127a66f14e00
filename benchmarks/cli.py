"""`edge-bench`: latency and accuracy loss of every precision in a bundle, in one comparable run.

    edge-bench --bundle DIR [--precisions fp32,fp16,int8] [--backend ort] [--out DIR]
    edge-bench report RESULT.json [--out DIR]

The first form verifies the bundle, checks each model against the PyTorch reference logits
stored in the bundle (exit 1 when a checked parity fails), measures accuracy loss against the
FP32 model on the bundle's validation data (or `--data`), times every precision, records the
environment, and writes JSON (the source of truth), Markdown and HTML. The second re-renders a
JSON written elsewhere, e.g. on a Jetson without matplotlib. The executor is always named: on a
host it is ONNX Runtime on the CPU, a stand-in for the TensorRT engine the Jetson builds.
Exit codes: 0 success, 1 bad bundle, bad data or failed parity, 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from benchmarks.env import TegrastatsSampler, probe_environment
from benchmarks.latency import batch_support, measure_latency, tile_batch
from benchmarks.report import (
    FORMATS,
    RESULT_KIND,
    RESULT_SCHEMA_VERSION,
    html_available,
    load_result,
    write_json,
    write_reports,
)
from edge.bundle import VALIDATION_SECTIONS, Bundle
from edge.errors import BundleError, EdgeBuildError
from edge.metrics import compare_to_reference
from edge.noise import noise_stability
from edge.parity import compare_outputs
from edge.preprocess import prepare_inputs
from edge.runtime import make_runner
from edge.spec import ModelSpec

__all__ = ["main", "build_parser", "run", "load_eval_data", "EvalData"]

logger = logging.getLogger(__name__)

REFERENCE_PRECISION = "fp32"
#: Gray levels (of 255) of input noise under which FP32's own decision stability is measured.
NOISE_GRAY = 0.5
#: Seed of the input noise of the stability measurement (the same draw on every run).
NOISE_SEED = 500
#: Backends edge-bench times (built by `edge.runtime.make_runner`): ONNX Runtime (CUDA where
#: this build offers it, else the CPU) and the TensorRT engine built on this device.
BACKENDS = ("ort", "trt")


@dataclass(frozen=True)
class EvalData:
    """Frames [N, frames per sample, H, W, 3] uint8, optional integer labels and sample names."""

    source: str
    frames: np.ndarray
    labels: Optional[np.ndarray]
    names: List[str]


def _csv(text: str) -> List[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _positive_ints(text: str) -> List[int]:
    try:
        values = [int(t) for t in _csv(text)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"batch sizes must be positive integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-bench",
        description="Check a bundle's models against its stored reference outputs, measure their "
        "accuracy loss against FP32 and their latency, and write JSON/Markdown/HTML reports.",
        epilog="Re-render a result JSON (e.g. from a Jetson): edge-bench report RESULT.json --out DIR",
    )
    parser.add_argument("--bundle", type=Path, help="bundle directory (required to benchmark)")
    commands = parser.add_subparsers(dest="command", metavar="report")
    _add_report_arguments(
        commands.add_parser(
            "report",
            help="re-render a result JSON",
            description="Render a result JSON written by edge-bench (on this machine or a "
            "Jetson) as Markdown and a self-contained HTML page.",
        )
    )
    parser.add_argument(
        "--precisions",
        "--precision",
        dest="precisions",
        default=None,
        help="comma-separated, default: every model in the bundle's manifest; fp32 is always "
        "run as the reference when the bundle has it",
    )
    parser.add_argument("--backend", choices=BACKENDS, default="ort")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="evaluation set .npz (frames uint8 [N,roles,H,W,3] in the spec's role order, optional labels int [N], names); "
        "default: the bundle's validation set, else its reference pairs",
    )
    parser.add_argument(
        "--noise-gray",
        type=float,
        default=NOISE_GRAY,
        help="gray levels (of 255) of input noise under which FP32's own decision stability is "
        "measured on every validation tier, the floor for agreement (0: skip)",
    )
    parser.add_argument("--iterations", type=int, default=50, help="at least this many timed runs")
    parser.add_argument(
        "--duration", type=float, default=0.0, help="and at least this many seconds timing"
    )
    parser.add_argument("--warmup", type=int, default=5, help="at least this many warm-up runs")
    parser.add_argument(
        "--warmup-seconds", type=float, default=0.2, help="and at least this long warming up"
    )
    parser.add_argument(
        "--batch-sizes",
        type=_positive_ints,
        default=[1],
        help="comma-separated; sizes a model's fixed batch does not allow are skipped and listed",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime")
    parser.add_argument(
        "--out", type=Path, default=None, help="report directory (default: <bundle>-bench)"
    )
    parser.add_argument(
        "--formats",
        default="auto",
        help="comma-separated from json,md,html; auto: all three, html only when matplotlib is installed",
    )
    parser.add_argument("--json", type=Path, help="also write the result JSON to this file")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result", type=Path)
    parser.add_argument(
        "--out",
        dest="report_out",
        metavar="DIR",
        type=Path,
        default=None,
        help="default: the directory of RESULT.json",
    )
    parser.add_argument(
        "--formats",
        dest="report_formats",
        metavar="FORMATS",
        default="md,html",
        help="comma-separated from md,html,json",
    )


# data ----------------------------------------------------------------------------------------
def _read_npz(path: Path) -> Dict[str, np.ndarray]:
    if not path.is_file():
        raise EdgeBuildError(f"{path}: evaluation data not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise EdgeBuildError(f"{path}: not a readable .npz: {exc}") from exc


def load_eval_data(bundle: Bundle, data_path: Optional[Path] = None) -> EvalData:
    """`--data`, else the manifest's `validation` file, else its `reference` file."""
    if data_path is not None:
        path, source = Path(data_path), str(data_path)
    else:
        entry = bundle.info.section("validation") or bundle.info.section("reference") or {}
        path, source = bundle.path(entry["file"]), entry["file"]
    return _eval_data(bundle, path, source)


def load_tiers(bundle: Bundle) -> Dict[str, EvalData]:
    """The bundle's validation tiers beyond the standard one (`hard`), by name."""
    tiers = {}
    for tier, section in VALIDATION_SECTIONS.items():
        entry = bundle.info.section(section) if tier != "standard" else None
        if entry:
            tiers[tier] = _eval_data(bundle, bundle.path(entry["file"]), entry["file"])
    return tiers


def _eval_data(bundle: Bundle, path: Path, source: str) -> EvalData:
    arrays = _read_npz(path)
    spec = bundle.spec
    frames = arrays.get("frames")
    roles = len(spec.preprocessing.frames)
    if frames is None or frames.dtype != np.uint8 or frames.ndim != 5 or frames.shape[1] != roles:
        raise EdgeBuildError(
            "{}: needs 'frames' uint8 [N, {}, H, W, 3], got {}".format(
                path,
                roles,
                "none" if frames is None else f"{frames.dtype} {list(frames.shape)}",
            )
        )
    if frames.shape[0] == 0 or frames.shape[4] != 3:
        raise EdgeBuildError(f"{path}: 'frames' has shape {list(frames.shape)}")
    labels = arrays.get("labels")
    if labels is not None:
        if labels.ndim != 1 or labels.shape[0] != frames.shape[0]:
            raise EdgeBuildError(
                f"{path}: 'labels' must be [N={frames.shape[0]}], got {list(labels.shape)}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise EdgeBuildError(f"{path}: 'labels' must be integers, got {labels.dtype}")
        if labels.min() < 0 or labels.max() >= spec.num_classes:
            raise EdgeBuildError(
                f"{path}: labels must be class indices 0..{spec.num_classes - 1} ({', '.join(spec.class_names)})"
            )
    names = [str(n) for n in arrays["names"]] if "names" in arrays else []
    if len(names) != frames.shape[0]:
        names = [f"sample-{i}" for i in range(frames.shape[0])]
    return EvalData(source=source, frames=frames, labels=labels, names=names)


def _feeds(spec: ModelSpec, frames: np.ndarray) -> List[Dict[str, np.ndarray]]:
    return [prepare_inputs(spec, dict(zip(spec.preprocessing.frames, pair))) for pair in frames]


def _precisions(bundle: Bundle, requested: Optional[str]) -> List[str]:
    models = bundle.info.models
    if not models:
        raise BundleError(f"{bundle.root}: the manifest's 'models' table is empty")
    if requested is None:
        wanted = list(models)
    else:
        wanted = _csv(requested)
        missing = [p for p in wanted if p not in models]
        if missing or not wanted:
            raise BundleError(
                "{}: no {} model in this bundle (has: {})".format(
                    bundle.root, ", ".join(missing) or "requested", ", ".join(models)
                )
            )
    if REFERENCE_PRECISION in models and REFERENCE_PRECISION not in wanted:
        wanted.insert(0, REFERENCE_PRECISION)
    if REFERENCE_PRECISION in wanted:
        wanted.remove(REFERENCE_PRECISION)
        wanted.insert(0, REFERENCE_PRECISION)
    return wanted


def _formats(text: str) -> List[str]:
    if text == "auto":
        return ["json", "md", "html"] if html_available() else ["json", "md"]
    formats = _csv(text)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise EdgeBuildError(
            "--formats: unknown {}; choose from {}".format(", ".join(unknown), ", ".join(FORMATS))
        )
    return formats


# the run -------------------------------------------------------------------------------------
def _parity_tolerance(bundle: Bundle, precision: str) -> Optional[float]:
    """FP32 uses the bundle's export tolerance; others only a tolerance their entry declares."""
    tolerance = bundle.info.models[precision].tolerance
    if tolerance is not None:
        return tolerance
    if precision == REFERENCE_PRECISION:
        return float((bundle.info.section("parity") or {})["tolerance"])
    return None


def _run_precision(
    bundle: Bundle,
    precision: str,
    args: argparse.Namespace,
    ref_feeds: List[Dict[str, np.ndarray]],
    ref_expected: List[Dict[str, np.ndarray]],
    eval_feeds: List[Dict[str, np.ndarray]],
    frames0: Dict[str, np.ndarray],
    runner_options: Optional[Dict[str, Any]] = None,
    tier_feeds: Optional[Dict[str, List[Dict[str, np.ndarray]]]] = None,
    tier_frames: Optional[Dict[str, np.ndarray]] = None,
) -> Dict[str, Any]:
    spec = bundle.spec
    out_name = spec.outputs[0].name
    tolerance = _parity_tolerance(bundle, precision)
    runner = make_runner(
        bundle, args.backend, precision, threads=args.threads, **(runner_options or {})
    )
    entry: Dict[str, Any] = {
        "precision": precision,
        "file": bundle.info.models[precision].file,
    }
    with runner:
        entry["executor"] = runner.executor
        got = [runner.infer(f) for f in ref_feeds]
        parity = compare_outputs(
            ref_expected,
            got,
            tolerance=tolerance if tolerance is not None else float("inf"),
            reference_name="bundle reference (PyTorch)",
            candidate_name=entry["executor"],
        ).to_dict()
        if tolerance is None:
            parity["tolerance"], parity["passed"] = None, None
        entry["parity"] = parity
        if eval_feeds is ref_feeds:
            logits = np.concatenate([g[out_name] for g in got], axis=0)
        else:
            logits = np.concatenate([runner.infer(f)[out_name] for f in eval_feeds], axis=0)
        entry["logits"] = logits
        infer = lambda feed: runner.infer(feed)[out_name]  # noqa: E731
        entry["tier_logits"] = {
            tier: np.concatenate([infer(f) for f in feeds], axis=0)
            for tier, feeds in (tier_feeds or {}).items()
        }
        if precision == REFERENCE_PRECISION and args.noise_gray > 0:
            # FP32's own decision stability: the floor a reduced precision is judged against.
            # Flow models get the noise on their frames, before the flow (edge.noise).
            tiers = {"standard": (eval_feeds, logits)}
            tiers.update({t: (f, entry["tier_logits"][t]) for t, f in (tier_feeds or {}).items()})
            entry["noise_stability"] = {
                tier: noise_stability(
                    infer,
                    feeds,
                    spec.preprocessing.std,
                    args.noise_gray,
                    seed=NOISE_SEED,
                    reference=ref,
                    spec=spec,
                    frames=(tier_frames or {}).get(tier),
                )
                for tier, (feeds, ref) in tiers.items()
            }
        entry["latency"], entry["skipped_batches"] = [], {}
        with TegrastatsSampler() as power:
            for batch in args.batch_sizes:
                reason = batch_support(runner.inputs, batch)
                if reason is not None:
                    entry["skipped_batches"][str(batch)] = reason
                    continue
                feeds = ref_feeds[0] if batch == 1 else tile_batch(ref_feeds[0], batch)
                lat = measure_latency(
                    runner,
                    feeds,
                    iterations=args.iterations,
                    duration_s=args.duration,
                    warmup_iterations=args.warmup,
                    warmup_seconds=args.warmup_seconds,
                    batch=batch,
                    preprocess=(lambda: prepare_inputs(spec, frames0)) if batch == 1 else None,
                    postprocess=lambda o: np.argmax(o[out_name], axis=-1),
                )
                entry["latency"].append(lat.to_dict())
        entry["power"] = power.summary()
    return entry


def run(
    args: argparse.Namespace,
    argv: Sequence[str] = (),
    *,
    runner_options: Optional[Dict[str, Any]] = None,
    command: str = "edge-bench",
) -> Dict[str, Any]:
    """Run every precision and return the result document (JSON-ready).

    `runner_options` go to `edge.runtime.make_runner` (edge-engine check passes the TensorRT
    module and CUDA runtime it has just built the engines with)."""
    for name in ("iterations", "warmup"):
        if getattr(args, name) < (1 if name == "iterations" else 0):
            raise EdgeBuildError(f"--{name} must be >= {1 if name == 'iterations' else 0}")
    if args.duration < 0 or args.warmup_seconds < 0:
        raise EdgeBuildError("--duration and --warmup-seconds must not be negative")
    if not args.noise_gray >= 0:
        raise EdgeBuildError(f"--noise-gray must be >= 0, got {args.noise_gray}")
    bundle = Bundle.load(args.bundle)
    spec = bundle.spec
    precisions = _precisions(bundle, args.precisions)
    reference = np.load(bundle.path(bundle.manifest["reference"]["file"]))
    ref_feeds = _feeds(spec, reference["frames"])
    out_name = spec.outputs[0].name
    ref_expected = [{out_name: row[None]} for row in reference["reference_logits"]]
    data = load_eval_data(bundle, args.data)
    same = args.data is None and not bundle.manifest.get("validation")
    eval_feeds = ref_feeds if same else _feeds(spec, data.frames)
    tiers = load_tiers(bundle) if args.data is None else {}
    tier_feeds = {tier: _feeds(spec, t.frames) for tier, t in tiers.items()}
    tier_frames = {"standard": reference["frames"] if same else data.frames}
    tier_frames.update({tier: t.frames for tier, t in tiers.items()})
    frames0 = dict(zip(spec.preprocessing.frames, reference["frames"][0]))

    environment = probe_environment()
    entries = [
        _run_precision(
            bundle,
            p,
            args,
            ref_feeds,
            ref_expected,
            eval_feeds,
            frames0,
            runner_options,
            tier_feeds,
            tier_frames,
        )
        for p in precisions
    ]
    reference_precision = REFERENCE_PRECISION if REFERENCE_PRECISION in precisions else None
    skipped: List[str] = []
    ref_logits = entries[0]["logits"] if reference_precision else None
    ref_tiers = entries[0]["tier_logits"] if reference_precision else {}
    for entry in entries:
        logits = entry.pop("logits")
        tier_logits = entry.pop("tier_logits")
        entry["accuracy_tiers"] = {
            tier: compare_to_reference(
                ref_tiers[tier], got, class_names=spec.class_names, labels=tiers[tier].labels
            )
            for tier, got in tier_logits.items()
            if tier in ref_tiers
        }
        for batch, reason in entry["skipped_batches"].items():
            skipped.append(f"{entry['precision']} batch {batch}: {reason}")
        entry["accuracy"] = (
            None
            if ref_logits is None
            else compare_to_reference(
                ref_logits, logits, class_names=spec.class_names, labels=data.labels
            )
        )
    if ref_logits is None:
        skipped.append(f"accuracy loss: the bundle has no {REFERENCE_PRECISION} reference model")

    stability = entries[0].pop("noise_stability", None) if reference_precision else None
    model = bundle.manifest.get("model") or {}
    head = entries[0]
    result: Dict[str, Any] = {
        "kind": RESULT_KIND,
        "schema_version": RESULT_SCHEMA_VERSION,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([command] + list(argv)),
        "bundle": {
            "path": str(args.bundle),
            "model": f"{spec.arch} {spec.variant}",
            "trained": model.get("trained"),
            "class_names": list(spec.class_names),
            "target": bundle.manifest.get("target"),
            "producer": bundle.manifest.get("producer"),
        },
        "settings": {
            "backend": args.backend,
            "iterations": args.iterations,
            "duration_s": args.duration,
            "warmup_iterations": args.warmup,
            "warmup_seconds": args.warmup_seconds,
            "batch_sizes": list(args.batch_sizes),
            "threads": args.threads,
        },
        "data": {
            "source": data.source,
            "samples": int(data.frames.shape[0]),
            "labelled": data.labels is not None,
            "names": data.names,
            # the bundle's other validation tiers (hard), when it has them
            **(
                {
                    "tiers": {
                        tier: {
                            "source": t.source,
                            "samples": int(t.frames.shape[0]),
                            "labelled": t.labels is not None,
                        }
                        for tier, t in tiers.items()
                    }
                }
                if tiers
                else {}
            ),
        },
        # FP32's own top-1 decisions kept under input noise, per tier: the floor that a reduced
        # precision's agreement is judged against
        "noise_stability": None
        if stability is None
        else {"gray_levels": args.noise_gray, "precision": REFERENCE_PRECISION, "tiers": stability},
        "environment": environment,
        "reference_precision": reference_precision,
        "precisions": entries,
        "skipped": skipped,
        # The first precision's parity and batch-1 latency, where scripts reading the
        # single-precision result of earlier versions look for them.
        "parity": head["parity"],
        "latency": next((lat for lat in head["latency"] if lat["batch"] == 1), None),
    }
    result["passed"] = all(e["parity"]["passed"] is not False for e in entries)
    return result


# output --------------------------------------------------------------------------------------
def _print_summary(result: Dict[str, Any]) -> None:
    print(
        "{} on {} ({} samples, {})".format(
            result["bundle"]["model"],
            result["data"]["source"],
            result["data"]["samples"],
            "labelled" if result["data"]["labelled"] else "no labels",
        )
    )
    for entry in result["precisions"]:
        par, acc = entry["parity"], entry.get("accuracy") or {}
        print("{} on {}".format(entry["precision"], entry["executor"]))
        verdict = {True: "ok", False: "FAILED", None: "report only (no tolerance declared)"}
        print(
            "  parity   max |diff| {:.2e} vs reference, top-1 agreement {:.0%} ({} samples): {}".format(
                par["max_abs_error"], par["top1_agreement"], par["samples"], verdict[par["passed"]]
            )
        )
        if acc:
            line = "  vs {}  top-1 agreement {:.0%}, max |diff| {:.2e}, min cosine {:.6f}".format(
                result["reference_precision"],
                acc["top1_agreement"],
                acc["logits"]["max_abs_error"],
                acc["logits"]["min_cosine"],
            )
            if acc.get("candidate"):
                c, d = acc["candidate"], acc["delta"]
                line += "; accuracy {:.1%} ({:+.1%}), UAR {:.1%} ({:+.1%}), UF1 {:.1%} ({:+.1%})".format(
                    c["accuracy"], d["accuracy"], c["uar"], d["uar"], c["uf1"], d["uf1"]
                )
            print(line)
        for tier, tacc in (entry.get("accuracy_tiers") or {}).items():
            line = "  {} tier ({} clips)  top-1 agreement {:.0%}".format(
                tier, tacc["samples"], tacc["top1_agreement"]
            )
            if tacc.get("candidate"):
                c, d = tacc["candidate"], tacc["delta"]
                line += "; accuracy {:.1%} ({:+.1%}), UAR {:.1%} ({:+.1%})".format(
                    c["accuracy"], d["accuracy"], c["uar"], d["uar"]
                )
            print(line)
        for lat in entry["latency"]:
            print(
                "  latency  batch {}: p50 {:.2f} ms  p90 {:.2f}  p99 {:.2f}  mean {:.2f} +- {:.2f}  ({:.1f}/s, {} runs)".format(
                    lat["batch"],
                    lat["p50_ms"],
                    lat["p90_ms"],
                    lat["p99_ms"],
                    lat["mean_ms"],
                    lat["std_ms"],
                    lat["throughput_per_s"],
                    lat["iterations"],
                )
            )
    stability = result.get("noise_stability")
    if stability:
        print("{} decisions kept under {} gray levels of input noise: {} (the floor for "
              "agreement)".format(stability["precision"], stability["gray_levels"], ", ".join(
                  f"{tier} {kept:.1%}" for tier, kept in stability["tiers"].items())))  # fmt: skip
    for line in result["skipped"]:
        print(f"  skipped  {line}")


def _main_report(args: argparse.Namespace) -> int:
    try:
        result = load_result(args.result)
        out = args.report_out if args.report_out is not None else args.result.parent
        formats = _csv(args.report_formats)
        written = write_reports(result, out, formats=formats, stem=args.result.stem)
    except EdgeBuildError as exc:
        print(f"edge-bench report: error: {exc}", file=sys.stderr)
        return 1
    for kind, path in written.items():
        print(f"{kind:<5} {path}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "report":
        return _main_report(args)
    if args.bundle is None:
        parser.error("the following arguments are required: --bundle")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="edge-bench: %(levelname)s: %(message)s",
    )
    try:
        formats = _formats(args.formats)
        result = run(args, argv)
        bundle_dir = Path(args.bundle).resolve()
        out = args.out if args.out is not None else bundle_dir.parent / (bundle_dir.name + "-bench")
        _print_summary(result)
        written = write_reports(result, out, formats=formats)
        if args.json:
            write_json(result, args.json)
    except EdgeBuildError as exc:
        print(f"edge-bench: error: {exc}", file=sys.stderr)
        return 1
    for kind, path in written.items():
        print(f"{kind:<5} {path}")
    if args.formats == "auto" and "html" not in formats:
        print("html  not written: matplotlib is not installed (render later: edge-bench report)")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
