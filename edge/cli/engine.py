"""`python3 -m edge.cli.engine` (= `edge-engine build`): build a bundle's TensorRT engine on
the Jetson. `edge-engine check` (benchmarks.engine_check) builds and checks every precision.

Runs on the device's system Python (3.8 on JetPack 5) with numpy, TensorRT and cuda-python.
Exit codes: 0 built; 1 a build error, or missing TensorRT / CUDA driver, with a one-line
reason; 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

from edge._lazy import is_available
from edge._trtcompat import caps_from_module
from edge.bundle import Bundle
from edge.engine import PRECISIONS, engine_from_bundle, plan_for_bundle, probe_device
from edge.engine.device import load_cudart, load_tensorrt, require_cuda_driver
from edge.errors import EdgeBuildError

__all__ = ["add_arguments", "run", "main"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", type=Path, required=True, help="bundle directory")
    parser.add_argument("--precision", choices=PRECISIONS, required=True)
    parser.add_argument("--workspace-mib", type=int, help="workspace memory pool limit in MiB")
    parser.add_argument("--dla-core", type=int, help="build for this DLA core (GPU fallback on)")
    parser.add_argument("--opt-level", type=int, help="builder optimization level 0-5 (8.6+)")
    parser.add_argument(
        "--no-timing-cache", action="store_true", help="neither read nor store the timing cache"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the build plan and stop")
    parser.add_argument("-v", "--verbose", action="store_true")


def run(args: argparse.Namespace) -> int:
    trt = load_tensorrt()
    options = dict(
        workspace_mib=args.workspace_mib,
        optimization_level=args.opt_level,
        dla_core=args.dla_core,
        timing_cache=not args.no_timing_cache,
    )
    if args.dry_run:
        plan = plan_for_bundle(
            Bundle.load(args.bundle), caps_from_module(trt), args.precision, **options
        )
        print(json.dumps(plan.to_dict(), indent=2))
        return 0
    cudart = None
    if is_available("cuda"):
        cudart = load_cudart()
        require_cuda_driver(cudart)  # TensorRT's builder needs it too: say so in one line
    else:
        log.warning("cuda-python is not installed: the engine key has no compute capability")
    device = probe_device(cudart=cudart)
    entry = engine_from_bundle(args.bundle, args.precision, trt=trt, device=device, **options)
    print(f"engine {args.bundle / entry['file']} ({entry['bytes']} bytes, {entry['build_s']} s)")
    print("  key     " + json.dumps(entry["key"]))
    if entry["gpu_fallback_layers"]:
        print(
            "  {} layers fall back from DLA to the GPU: {}".format(
                len(entry["gpu_fallback_layers"]), ", ".join(entry["gpu_fallback_layers"])
            )
        )
    return 0


def main(argv: Optional[List[str]] = None, *, prog: str = "python3 -m edge.cli.engine") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Build the TensorRT engine of a bundle on this device and record it in the "
        "bundle's manifest.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return run(args)
    except EdgeBuildError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
