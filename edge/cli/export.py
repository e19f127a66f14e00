"""`edge-export`: hand a bundle to other serving stacks.

    edge-export triton --bundle DIR --out REPO [--max-batch N] [--instances K]

writes REPO/<model>/config.pbtxt and REPO/<model>/1/model.{onnx,plan} for a standalone Triton
Inference Server: the TensorRT engine built for this Jetson when run on one, else the ONNX
model for Triton's ONNX Runtime backend. Exit codes: 0 written, 1 a one-line reason, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from edge.bundle import Bundle
from edge.errors import EdgeBuildError

__all__ = ["build_parser", "main"]


def _add_triton(sub: argparse._SubParsersAction) -> None:
    from edge.fleet.repository import KINDS, PLATFORMS

    parser = sub.add_parser(
        "triton",
        help="a Triton model repository",
        description="Write the bundle as one model of a Triton model repository.",
    )
    parser.add_argument("--bundle", type=Path, required=True, help="bundle directory")
    parser.add_argument("--out", type=Path, required=True, help="model repository directory")
    parser.add_argument("--precision", default="fp32", help="bundle model to export")
    parser.add_argument("--model-name", help="Triton model name (default: the bundle's arch)")
    parser.add_argument(
        "--platform",
        choices=PLATFORMS,
        default="auto",
        help="auto = tensorrt_plan on a Jetson (the engine built there), else onnxruntime_onnx",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=8,
        help="dynamic batching up to this size (needs a --dynamic-batch bundle); 0 = none",
    )
    parser.add_argument("--queue-delay-us", type=int, default=0, help="batcher queue delay")
    parser.add_argument("--instances", type=int, default=1, help="model instances (count)")
    parser.add_argument(
        "--instance-kind",
        choices=list(KINDS),
        default="auto",
        help="where ONNX Runtime instances run (TensorRT plans always run on the GPU)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-export", description="Export a bundle for other serving stacks."
    )
    sub = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    _add_triton(sub)
    return parser


def _run_triton(args: argparse.Namespace) -> int:
    from edge.fleet.repository import RepositoryOptions, write_repository

    bundle = Bundle.load(args.bundle)
    options = RepositoryOptions(
        model_name=args.model_name or str(bundle.manifest["model"]["arch"]),
        precision=args.precision,
        platform=args.platform,
        max_batch=args.max_batch,
        instances=args.instances,
        kind=args.instance_kind,
        queue_delay_us=args.queue_delay_us,
    )
    target = write_repository(bundle, args.out, options)
    print(
        f"edge-export: wrote {target} (serve it with: tritonserver --model-repository {args.out})"
    )
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_batch < 0 or args.instances < 1 or args.queue_delay_us < 0:
        parser.error("--max-batch must be >= 0, --instances >= 1, --queue-delay-us >= 0")
    if args.model_name is not None and not all(c.isalnum() or c in "._-" for c in args.model_name):
        parser.error("--model-name may hold only letters, digits, '.', '_' and '-'")
    try:
        return _run_triton(args)
    except EdgeBuildError as exc:
        print(f"edge-export: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
