"""`edge-run`: run a bundle's model on a video, a camera, or an onset/apex pair of face crops.

- `edge-run --bundle DIR VIDEO | --camera N`: decode with OpenCV, register the face once per
  clip, spot onset/apex (or take `--onset F --apex F` frame numbers), classify each event and
  write JSON lines (stdout or `--events-out`), optionally an annotated video.
- `edge-run --bundle DIR --onset A.png --apex B.png`: classify one pair of registered crops
  (like CASME II's `Cropped` frames).

Exit codes: 0 success, 1 bad input (one-line reason), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

from edge.bundle import Bundle
from edge.classify import classify_pair, read_frame
from edge.errors import EdgeBuildError

__all__ = ["main", "build_parser"]

BACKENDS = ("ort", "torch", "trt")
ALIGNERS = ("mediapipe", "dlib", "precropped")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-run",
        description="Spot and classify micro-expressions in a video or camera stream, or classify "
        "one onset/apex pair of face crops.",
    )
    parser.add_argument("--bundle", type=Path, required=True, help="bundle directory")
    parser.add_argument("video", nargs="?", type=Path, help="video file to process")
    parser.add_argument("--camera", type=int, metavar="N", help="camera index instead of a file")
    parser.add_argument(
        "--onset",
        help="onset: a frame number with VIDEO/--camera (skips spotting), else a face-crop image",
    )
    parser.add_argument(
        "--apex", help="apex: a frame number with VIDEO/--camera, else a face-crop image"
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="ort",
        help="ort = ONNX Runtime (CUDA when available, else CPU); torch = PyTorch reference; "
        "trt = TensorRT engine (Jetson)",
    )
    parser.add_argument("--precision", default="fp32", help="bundle model to run (fp32, int8...)")
    parser.add_argument(
        "--aligner", choices=ALIGNERS, default="mediapipe", help="face alignment for video input"
    )
    parser.add_argument("--events-out", type=Path, help="JSON-lines file (default: stdout)")
    parser.add_argument("--annotated-out", type=Path, help="write an annotated copy of the video")
    parser.add_argument("--threads", type=int, help="inference threads (ONNX Runtime)")
    parser.add_argument("--checkpoint", help="checkpoint for --backend torch on a trained bundle")
    parser.add_argument("--json", action="store_true", help="image mode: print one JSON line")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return parser


def _frame_number(parser: argparse.ArgumentParser, flag: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        parser.error(f"{flag} must be a frame number with a video or camera, got {value!r}")
    if number < 0:
        parser.error(f"{flag} must be >= 0, got {number}")
    return number


def _run_images(args: argparse.Namespace) -> int:
    bundle = Bundle.load(args.bundle)
    color = bundle.spec.preprocessing.color
    frames = {
        "onset": read_frame(Path(args.onset), color),
        "apex": read_frame(Path(args.apex), color),
    }
    prediction = classify_pair(bundle, frames, backend=args.backend, precision=args.precision)
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


def _run_stream(args: argparse.Namespace, onset: Optional[int], apex: Optional[int]) -> int:
    from edge.align import make_aligner
    from edge.pipeline import (
        AnnotatedVideo,
        EventClassifier,
        JsonLines,
        VideoSource,
        make_runner,
        run_given,
        run_spotting,
    )

    bundle = Bundle.load(args.bundle)
    spec = bundle.spec
    aligner = make_aligner(args.aligner, size=spec.preprocessing.size[0])
    runner = make_runner(
        bundle,
        args.backend,
        precision=args.precision,
        threads=args.threads,
        checkpoint=args.checkpoint,
    )
    source_arg = args.camera if args.camera is not None else args.video
    sink = JsonLines(args.events_out if args.events_out else sys.stdout)
    annotated = None
    try:
        with runner, VideoSource(source_arg) as source:
            classifier = EventClassifier(runner, spec)
            if onset is not None and apex is not None:
                summary = run_given(source, aligner, classifier, sink, onset=onset, apex=apex)
            else:
                if args.annotated_out:
                    annotated = AnnotatedVideo(args.annotated_out, source.fps)
                summary = run_spotting(source, aligner, classifier, sink, annotated=annotated)
    finally:
        sink.close()
        if annotated is not None:
            annotated.close()
    print(
        "edge-run: {} frames ({} corrupt), {} event(s), {:.2f}x real time [{}]".format(
            summary["frames"],
            summary["corrupt_frames"],
            summary["events"],
            summary["realtime_factor"] or 0.0,
            summary["executor"],
        ),
        file=sys.stderr,
    )
    if not bundle.manifest["model"].get("trained"):
        print(
            "edge-run: note: this bundle holds an UNTRAINED demo model; labels are meaningless",
            file=sys.stderr,
        )
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    streaming = args.video is not None or args.camera is not None
    if args.video is not None and args.camera is not None:
        parser.error("give either VIDEO or --camera N, not both")
    if (args.onset is None) != (args.apex is None):
        parser.error("--onset and --apex go together")
    try:
        if streaming:
            onset = _frame_number(parser, "--onset", args.onset) if args.onset else None
            apex = _frame_number(parser, "--apex", args.apex) if args.apex else None
            return _run_stream(args, onset, apex)
        if args.onset is None:
            parser.error("give a VIDEO, --camera N, or --onset IMAGE --apex IMAGE")
        if args.annotated_out or args.events_out:
            parser.error("--events-out and --annotated-out need a VIDEO or --camera")
        return _run_images(args)
    except EdgeBuildError as exc:
        print(f"edge-run: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
