"""`edge-run`: run a bundle's model on a video, a camera, or an onset/apex pair of face crops.

- `edge-run --bundle DIR VIDEO | --camera N`: decode with OpenCV, register the face once per
  clip, spot onset/apex (or take `--onset F --apex F` frame numbers), classify each event and
  write JSON lines (stdout or `--events-out FILE`), or publish them to an MQTT broker
  (`--events-out mqtt://HOST:PORT/TOPIC`, the fleet extra), optionally an annotated video.
- `edge-run --bundle DIR --onset A.png --apex B.png`: classify one pair of registered crops
  (like CASME II's `Cropped` frames); a model that reads only the apex (AFNet-M) takes
  `--apex B.png`.
- Models that read depth (AFNet-M) need `--depth DIR` (depth images, one per video frame; in
  image mode one depth image) or `--depth proxy` (a face-shaped stand-in, not a measurement).

Exit codes: 0 success, 1 bad input (one-line reason), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from edge.bundle import Bundle
from edge.classify import classify_pair, read_frame
from edge.errors import EdgeBuildError
from edge.fleet.mqtt import is_mqtt_url, parse_mqtt_url
from edge.pipeline.live import MAX_UPSCALE
from edge.pipeline.uri import parse_source
from edge.runtime import make_runner

__all__ = ["main", "build_parser"]

BACKENDS = ("ort", "torch", "trt")
ALIGNERS = ("mediapipe", "mediapipe-fast", "dlib", "precropped")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-run",
        description="Spot and classify micro-expressions in a video or camera stream, or classify "
        "one onset/apex pair of face crops.",
    )
    parser.add_argument("--bundle", type=Path, required=True, help="bundle directory")
    parser.add_argument(
        "video",
        nargs="?",
        metavar="SOURCE",
        help="video file, camera index or /dev/videoN, csi://N (Jetson CSI camera), "
        "rtsp://... (IP camera), or a GStreamer pipeline ending in appsink",
    )
    parser.add_argument("--camera", type=int, metavar="N", help="camera index (same as SOURCE N)")
    parser.add_argument(
        "--face",
        type=int,
        metavar="N",
        help="with several faces, follow the N-th from the left (0-based; default: the largest)",
    )
    parser.add_argument(
        "--min-face",
        type=float,
        default=48.0,
        metavar="PX",
        help="smallest face searched for, in px (BlazeFace box side; default 48): smaller is "
        "slower to search",
    )
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
    parser.add_argument(
        "--depth",
        help="for models that read depth: a folder of depth images (one per video frame, "
        "millimetres), a depth image in image mode, or 'proxy' (face-shaped stand-in)",
    )
    parser.add_argument(
        "--preprocess",
        choices=("auto", "opencv", "native", "native-cpu"),
        default="auto",
        help="with --onset/--apex frame numbers: fused warp+normalise by the edge_preproc CUDA "
        "library (auto: when it is built and sees a GPU, else OpenCV)",
    )
    parser.add_argument(
        "--max-frames", type=int, metavar="N", help="stop after N frames (cameras and streams)"
    )
    parser.add_argument(
        "--events-out",
        help="JSON-lines file, or mqtt[s]://HOST[:PORT]/TOPIC to publish each record with QoS 1 "
        "(default: stdout)",
    )
    mqtt = parser.add_argument_group(
        "MQTT (--events-out mqtt://...)",
        "credentials and TLS files may also come from EDGE_MQTT_USERNAME, EDGE_MQTT_PASSWORD, "
        "EDGE_MQTT_CA_FILE, EDGE_MQTT_CERT_FILE and EDGE_MQTT_KEY_FILE",
    )
    mqtt.add_argument("--mqtt-username", help="broker user name")
    mqtt.add_argument(
        "--mqtt-password-file", help="file holding the broker password (never on the command line)"
    )
    mqtt.add_argument("--mqtt-ca", help="CA bundle for mqtts:// (default: the system's)")
    mqtt.add_argument("--mqtt-cert", help="client certificate for mqtts://")
    mqtt.add_argument("--mqtt-key", help="client key for mqtts://")
    mqtt.add_argument(
        "--mqtt-source", help="the 'source' field of every record (default: host name)"
    )
    mqtt.add_argument(
        "--mqtt-outage-s",
        type=float,
        default=60.0,
        help="how long records are buffered and retried while the broker is away before "
        "edge-run fails (default %(default)s)",
    )
    mqtt.add_argument(
        "--mqtt-buffer",
        type=int,
        default=10000,
        help="most records held for an absent broker (default %(default)s)",
    )
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


def _image_frames(args: argparse.Namespace, spec) -> Dict[str, np.ndarray]:
    """role -> frame from the image arguments; a clear error for roles images cannot give."""
    from edge.depth import relative_depth
    from edge.frames import colour_role, is_depth
    from edge.pipeline.depth import ProxyDepth, read_depth_image
    from edge.preprocess import resize_frame

    prep = spec.preprocessing
    given = {"onset": args.onset, "apex": args.apex}
    frames: Dict[str, np.ndarray] = {}
    for role in prep.frames:
        if is_depth(role):
            if args.depth is None:
                raise EdgeBuildError(
                    f"{spec.arch} reads depth at the {colour_role(role)}: pass --depth IMAGE or --depth proxy"
                )
            if args.depth == "proxy":
                frames[role] = ProxyDepth(prep.storage_size, prep.depth_range_mm).image
            else:
                depth = resize_frame(read_depth_image(Path(args.depth)), prep.storage_size)
                frames[role] = relative_depth(depth, prep.depth_range_mm)
        elif given.get(role) is not None:
            frames[role] = read_frame(Path(given[role]), prep.color)
        elif role in given:
            raise EdgeBuildError(f"{spec.arch} reads the {role} frame: pass --{role} IMAGE")
        else:
            raise EdgeBuildError(
                f"{spec.arch} reads the frames {list(prep.frames)}; image mode gives only "
                "--onset/--apex crops: run it on a VIDEO (with --onset/--apex frame numbers "
                "or spotting)"
            )
    return frames


def _run_images(args: argparse.Namespace) -> int:
    bundle = Bundle.load(args.bundle)
    prediction = classify_pair(
        bundle,
        _image_frames(args, bundle.spec),
        backend=args.backend,
        precision=args.precision,
        threads=args.threads,
        checkpoint=args.checkpoint,
    )
    if args.json:
        record = {
            "onset": str(args.onset) if args.onset else None,
            "apex": str(args.apex),
            "label": prediction.label,
            "scores": prediction.scores,
            "latency_ms": round(prediction.latency_ms, 3),
            "executor": prediction.executor,
            "trained": bool(bundle.info.trained),
        }
        if args.depth is not None:
            record["depth"] = "proxy (not measured)" if args.depth == "proxy" else str(args.depth)
        print(json.dumps(record))
    else:
        print(
            f"{prediction.label} ({prediction.scores[prediction.label]:.1%})  [{prediction.executor}; {prediction.latency_ms:.1f} ms]"
        )
        if not bundle.info.trained:
            print("note: this bundle holds an UNTRAINED demo model; the label is meaningless")
    return 0


def _fused_preprocessor(kind: str):
    """The native preprocessor, or None for the OpenCV path the pipeline runs by itself."""
    from edge.native.preproc import OpenCVPreprocessor, make_preprocessor

    pre = make_preprocessor(kind)
    return None if isinstance(pre, OpenCVPreprocessor) else pre


def _events_sink(args: argparse.Namespace):
    """A JSON-lines file or stdout, or an MQTT publisher (connected before any frame is read)."""
    from edge.pipeline import JsonLines

    if args.mqtt_target is None:
        return JsonLines(Path(args.events_out) if args.events_out else sys.stdout)
    from edge.fleet.mqtt import MqttAuth, MqttEvents

    auth = MqttAuth.resolve(
        username=args.mqtt_username,
        password_file=args.mqtt_password_file,
        ca_file=args.mqtt_ca,
        cert_file=args.mqtt_cert,
        key_file=args.mqtt_key,
    )
    return MqttEvents(
        args.mqtt_target,
        auth,
        buffer=args.mqtt_buffer,
        outage_s=args.mqtt_outage_s,
        source=args.mqtt_source,
    )


def _run_stream(args: argparse.Namespace, onset: Optional[int], apex: Optional[int]) -> int:
    from edge.align import make_aligner
    from edge.pipeline import (
        AnnotatedVideo,
        EventClassifier,
        PipelineConfig,
        VideoSource,
        make_depth_source,
        run_given,
        run_spotting,
    )

    bundle = Bundle.load(args.bundle)
    spec = bundle.spec
    # Faces are registered at the storage size: a flow model computes flow on larger crops
    # than its input.
    stored = spec.preprocessing.storage_size
    aligner = make_aligner(args.aligner, size=stored[0], min_face=args.min_face)
    depth = make_depth_source(args.depth, stored, spec.preprocessing.depth_range_mm)
    runner = make_runner(
        bundle, args.backend, args.precision, threads=args.threads, checkpoint=args.checkpoint
    )
    source_arg = args.source_spec
    sink = _events_sink(args)
    annotated = None
    try:
        with runner, VideoSource(source_arg, max_frames=args.max_frames) as source:
            classifier = EventClassifier(runner, spec)
            if onset is not None and apex is not None:
                summary = run_given(
                    source, aligner, classifier, sink, onset=onset, apex=apex, depth=depth,
                    preprocessor=_fused_preprocessor(args.preprocess),
                )  # fmt: skip
            else:
                if args.annotated_out:
                    annotated = AnnotatedVideo(args.annotated_out, source.fps)
                summary = run_spotting(
                    source, aligner, classifier, sink, annotated=annotated, depth=depth,
                    config=PipelineConfig(face=args.face),
                )  # fmt: skip
    finally:
        sink.close()
        if annotated is not None:
            annotated.close()
    if getattr(sink, "target", None) is not None:
        print(
            f"edge-run: {sink.published} record(s) acknowledged by {sink.target.describe()}",
            file=sys.stderr,
        )
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
    upscale = summary.get("face_upscale")
    if upscale is not None and upscale > MAX_UPSCALE:
        print(
            "edge-run: warning: the face was {:.0f} px wide, so the model's {} px input was "
            "{:.1f}x upscaled, mostly interpolation (under {:.0f} px it is); micro-expressions "
            "shrink with it: move the camera closer or use a longer lens".format(
                summary["face_px"], stored[0], upscale,
                summary["face_px"] * upscale / MAX_UPSCALE,
            ),
            file=sys.stderr,
        )  # fmt: skip
    if not bundle.info.trained:
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
        parser.error("give either SOURCE or --camera N, not both")
    if args.face is not None and args.face < 0:
        parser.error(f"--face must be >= 0, got {args.face}")
    if args.max_frames is not None and args.max_frames < 1:
        parser.error(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.min_face < 16:
        parser.error(f"--min-face must be >= 16 px, got {args.min_face}")
    if streaming and (args.onset is None) != (args.apex is None):
        parser.error("--onset and --apex go together")
    if streaming:
        try:
            args.source_spec = parse_source(args.camera if args.camera is not None else args.video)
        except EdgeBuildError as exc:
            parser.error(str(exc))
    args.mqtt_target = None
    if args.events_out and is_mqtt_url(args.events_out):
        try:
            args.mqtt_target = parse_mqtt_url(args.events_out)
        except ValueError as exc:
            parser.error(f"--events-out: {exc}")
        if args.mqtt_buffer < 1 or args.mqtt_outage_s <= 0:
            parser.error("--mqtt-buffer must be >= 1 and --mqtt-outage-s > 0")
    try:
        if streaming:
            onset = _frame_number(parser, "--onset", args.onset) if args.onset else None
            apex = _frame_number(parser, "--apex", args.apex) if args.apex else None
            return _run_stream(args, onset, apex)
        if args.apex is None:
            parser.error("give a VIDEO, --camera N, or --onset IMAGE --apex IMAGE")
        if args.annotated_out or args.events_out:
            parser.error("--events-out and --annotated-out need a VIDEO or --camera")
        return _run_images(args)
    except EdgeBuildError as exc:
        print(f"edge-run: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
