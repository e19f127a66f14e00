"""`edge-run`: run a bundle's model on an onset/apex pair of pre-cropped face images.

Video files, cameras, face alignment and onset/apex spotting build on this command with the
runtime work; today it classifies registered crops (like CASME II's `Cropped` frames).
Exit codes: 0 success, 1 bad input (one-line reason), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from edge.bundle import Bundle
from edge.classify import classify_pair, read_frame
from edge.errors import EdgeBuildError

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-run",
        description="Classify a micro-expression from an onset and an apex face crop.",
    )
    parser.add_argument("--bundle", type=Path, required=True, help="bundle directory")
    parser.add_argument("--onset", type=Path, required=True, help="onset frame (face crop)")
    parser.add_argument("--apex", type=Path, required=True, help="apex frame (face crop)")
    parser.add_argument(
        "--backend",
        choices=["ort"],
        default="ort",
        help="ort = ONNX Runtime on the CPU (TensorRT arrives with engines)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        bundle = Bundle.load(args.bundle)
        color = bundle.spec.preprocessing.color
        frames = {"onset": read_frame(args.onset, color), "apex": read_frame(args.apex, color)}
        prediction = classify_pair(bundle, frames, backend=args.backend)
    except EdgeBuildError as exc:
        print(f"edge-run: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "onset": str(args.onset),
                    "apex": str(args.apex),
                    "label": prediction.label,
                    "scores": prediction.scores,
                    "latency_ms": round(prediction.latency_ms, 3),
                    "executor": prediction.executor,
                    "trained": bool(bundle.manifest["model"].get("trained")),
                }
            )
        )
    else:
        print(
            f"{prediction.label} ({prediction.scores[prediction.label]:.1%})  [{prediction.executor}; {prediction.latency_ms:.1f} ms]"
        )
        if not bundle.manifest["model"].get("trained"):
            print("note: this bundle holds an UNTRAINED demo model; the label is meaningless")
    return 0


if __name__ == "__main__":
    sys.exit(main())
