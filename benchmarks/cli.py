"""`edge-bench --bundle DIR`: verify a bundle against its reference outputs and time it.

The executor is always named: on a host it is ONNX Runtime on the CPU, a stand-in for the
TensorRT engine the Jetson builds. Exit codes: 0 success, 1 bad bundle or failed parity.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

from benchmarks.latency import measure_latency
from edge.bundle import Bundle
from edge.errors import EdgeBuildError
from edge.parity import compare_outputs
from edge.preprocess import prepare_inputs
from edge.runtime import runner_class

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-bench",
        description="Check a bundle's model against its stored reference outputs and measure "
        "its latency.",
    )
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--backend", choices=["ort"], default="ort")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    return parser


def run(args: argparse.Namespace) -> dict:
    bundle = Bundle.load(args.bundle)
    spec = bundle.spec
    reference = np.load(bundle.path(bundle.manifest["reference"]["file"]))
    feeds = [
        prepare_inputs(spec, dict(zip(spec.preprocessing.frames, pair)))
        for pair in reference["frames"]
    ]
    expected = [{spec.outputs[0].name: row[None]} for row in reference["reference_logits"]]
    tolerance = float(bundle.manifest["parity"]["tolerance"])
    runner = runner_class(args.backend)(bundle.onnx_path(args.precision), threads=args.threads)
    with runner:
        got = [runner.infer(f) for f in feeds]
        parity = compare_outputs(
            expected,
            got,
            tolerance=tolerance,
            reference_name="bundle reference (PyTorch)",
            candidate_name=runner.executor,
        )
        latency = measure_latency(runner, feeds[0], iterations=args.iterations)
    return {
        "bundle": str(args.bundle),
        "precision": args.precision,
        "model": f"{spec.arch} {spec.variant}",
        "parity": parity.to_dict(),
        "latency": latency.to_dict(),
    }


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = run(args)
    except EdgeBuildError as exc:
        print(f"edge-bench: error: {exc}", file=sys.stderr)
        return 1
    lat, par = result["latency"], result["parity"]
    print("{} {} on {}".format(result["model"], result["precision"], lat["executor"]))
    print(
        "  parity   max |diff| {:.2e} vs reference, top-1 agreement {:.0%} ({} samples): {}".format(
            par["max_abs_error"],
            par["top1_agreement"],
            par["samples"],
            "ok" if par["passed"] else "FAILED",
        )
    )
    print(
        "  latency  p50 {:.2f} ms  p90 {:.2f}  p99 {:.2f}  mean {:.2f} +- {:.2f}  ({:.1f}/s, {} runs)".format(
            lat["p50_ms"],
            lat["p90_ms"],
            lat["p99_ms"],
            lat["mean_ms"],
            lat["std_ms"],
            lat["throughput_per_s"],
            lat["iterations"],
        )
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if par["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
