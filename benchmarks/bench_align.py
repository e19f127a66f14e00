"""Host benchmark: alignment + preprocessing of an onset/apex pair, single-threaded, MediaPipe
(OpenCV dnn) against dlib HOG + 5 points, as ratios from one run; the full-frame face search with
each BlazeFace variant as its tiling detector; the aligner's cost per frame at 720p and 1080p
for faces of 170 and 100 px; then `edge-run`'s real-time factor and spotting on the generated
720p (170 px face) and 1080p (100 px face) videos with drift and sensor noise.

    .venv/bin/python -m benchmarks.bench_align [--bundle build/demo] [--precision fp32]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["time_pair", "main"]


def time_pair(aligner, onset: np.ndarray, apex: np.ndarray, repeats: int) -> Dict[str, float]:
    """Median ms of: register on the onset, warp both frames, normalise both for the model."""
    from edge.align import NoFace
    from edge.preprocess import normalize_frame
    from edge.spec import Preprocessing

    prep = Preprocessing()

    def once() -> None:
        registration = aligner.register(onset)
        if isinstance(registration, NoFace):
            raise RuntimeError(f"{aligner.name}: {registration.reason}")
        for frame in (onset, apex):
            normalize_frame(aligner.warp(frame, registration), prep)

    for _ in range(3):
        once()
    samples: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        once()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return {"median_ms": float(np.median(samples)), "p90_ms": float(np.percentile(samples, 90))}


def _pair():
    from skimage import data

    from calib.faces import micro_expression_pair

    onset = np.ascontiguousarray(data.astronaut())
    _, face = micro_expression_pair("astronaut", size=160)
    apex = onset.copy()
    apex[40:200, 146:306] = face
    return onset, apex


#: (name, frame size, face px, face centre) of the generated videos: a person about 1 m from a
#: 720p webcam, and about 2 m from a 1080p one.
VIDEOS = (
    ("720p/170", (1280, 720), 170, (0.4, 0.55)),
    ("720p/100", (1280, 720), 100, (0.4, 0.55)),
    ("1080p/170", (1920, 1080), 170, (0.65, 0.4)),
    ("1080p/100", (1920, 1080), 100, (0.65, 0.4)),
)
#: Planted events of the real-time videos: (onset, onset-to-apex frames).
EVENTS = ((45, 5), (105, 5), (165, 5), (225, 5), (285, 5))


def search_comparison(repeats: int = 1) -> Dict[str, Dict[str, float]]:
    """Each BlazeFace variant as the tiling detector of `FaceSearch`: calls, ms and found rate
    for one face of 80, 170 or 400 px placed off-centre in 720p and 1080p frames."""
    from calib.video import compose_frame
    from edge.align.search import FaceSearch

    frames = []
    for size in ((1280, 720), (1920, 1080)):
        for face_px, centre in ((80, (0.2, 0.75)), (170, (0.7, 0.3)), (400, (0.45, 0.5))):
            for photo in ("astronaut", "cameraman"):
                rgb, (box,) = compose_frame(size, [(photo, face_px, centre)])
                noisy = np.clip(rgb + np.random.default_rng(0).normal(0, 2, rgb.shape), 0, 255)
                frames.append((size, noisy.astype(np.uint8)[:, :, ::-1].copy(), box))
    results: Dict[str, Dict[str, float]] = {}
    for model in ("back", "full-range", "short-range"):
        search = FaceSearch(model=model)
        search.search(frames[0][1], bgr=True)  # load the models
        found = 0
        times: Dict[str, List[float]] = {"720p": [], "1080p": []}
        for size, bgr, box in frames:
            for _ in range(repeats):
                start = time.perf_counter()
                faces = search.search(bgr, bgr=True)
                times["720p" if size[1] == 720 else "1080p"].append(time.perf_counter() - start)
            side = box[2] - box[0]
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            found += len(faces) == 1 and all(
                abs(f.centre[0] - cx) < 0.3 * side and abs(f.centre[1] - cy) < 0.3 * side
                for f in faces
            )
        results[model] = {
            "calls_720p": search.plan(1280, 720).calls,
            "calls_1080p": search.plan(1920, 1080).calls,
            "ms_720p": 1000 * float(np.median(times["720p"])),
            "ms_1080p": 1000 * float(np.median(times["1080p"])),
            "found": found / len(frames),
        }
    return results


def aligner_per_frame(path: Path, aligner_name: str) -> Dict[str, float]:
    """What the aligner adds per frame in `edge-run` (tracking, one registration per track,
    the warp to the crop), decoding excluded; and the share of frames with the face found."""
    from edge.align import FaceTracker, NoFace, make_aligner
    from edge.pipeline import PipelineConfig, VideoSource

    aligner = make_aligner(aligner_name)
    with VideoSource(path) as source:
        tracker = FaceTracker(aligner.faces(), PipelineConfig().tracker(source.fps))
        warm = np.zeros((720, 1280, 3), np.uint8)
        aligner.faces().search(warm, bgr=True)  # load the models outside the timing
        aligner.register(warm, bgr=True)
        track, registration, found, spent = None, None, 0, 0.0
        for frame in source:
            start = time.perf_counter()
            face = tracker.update(frame.bgr, bgr=True)
            if face is not None:
                found += 1
                if face.track != track:
                    track = face.track
                    registration = aligner.register(frame.bgr, detection=face.detection, bgr=True)
                if registration is not None and not isinstance(registration, NoFace):
                    aligner.warp(frame.bgr, registration)
            spent += time.perf_counter() - start
        frames = max(1, source.frames_read)
    return {
        "ms_per_frame": 1000 * spent / frames,
        "found": found / frames,
        "searches": tracker.searches,
        "redetections": tracker.redetections,
    }


def _realtime(bundle: Path, precision: str, video, aligner: str = "mediapipe") -> Dict[str, object]:
    from edge.cli.run import main as run_main

    events = video.path.with_suffix(".jsonl")
    code = run_main(
        [
            "--bundle", str(bundle), str(video.path), "--precision", precision,
            "--aligner", aligner, "--events-out", str(events),
        ]
    )  # fmt: skip
    if code != 0:
        raise RuntimeError(f"edge-run exited {code}")
    records = [json.loads(line) for line in events.read_text().splitlines()]
    summary = records[-1]
    planted = [e.apex for e in video.events]
    found = [r["apex_frame"] for r in records if r["type"] == "event"]
    summary["planted_apexes"] = planted
    summary["found_apexes"] = found
    summary["hits"], summary["false_events"] = match_events(planted, found)
    return summary


def match_events(planted: List[int], found: List[int], within: int = 10) -> Tuple[int, int]:
    """(planted apexes found within `within` frames, other events): each planted event
    matches at most one found event, so a second event near the same apex counts as false."""
    unused = sorted(found)
    hits = 0
    for apex in sorted(planted):
        near = [f for f in unused if abs(f - apex) <= within]
        if near:
            unused.remove(min(near, key=lambda f: abs(f - apex)))
            hits += 1
    return hits, len(unused)


def _load() -> str:
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def _pair_timing(repeats: int) -> None:
    from edge.align import DlibAligner, MediaPipeAligner

    onset, apex = _pair()
    aligners: Dict[str, Callable[[], object]] = {
        "mediapipe": MediaPipeAligner,
        "mp-fast": lambda: MediaPipeAligner(landmarks="detector"),
    }
    if importlib.util.find_spec("dlib") and importlib.util.find_spec("face_recognition_models"):
        aligners["dlib"] = DlibAligner
    else:
        print(
            "dlib path skipped: pip install dlib-bin && pip install --no-deps face-recognition-models"
        )
    results = {name: time_pair(make(), onset, apex, repeats) for name, make in aligners.items()}
    print(
        f"alignment + preprocessing of an onset/apex pair (512x512 photo, 1 thread, {repeats} runs)"
    )
    base = results["mediapipe"]["median_ms"]
    for name, r in results.items():
        print(
            f"  {name:10s} median {r['median_ms']:7.2f} ms  p90 {r['p90_ms']:7.2f} ms  {r['median_ms'] / base:5.2f}x"
        )
    if "dlib" in results:
        print(f"  dlib / mediapipe: {results['dlib']['median_ms'] / base:.2f}x slower")
        fast = results["mp-fast"]["median_ms"]
        print(f"  dlib / mp-fast:   {results['dlib']['median_ms'] / fast:.2f}x slower")
    print("  target: <= 5 ms per pair: mediapipe {}, mp-fast {}".format(
        "met" if base <= 5.0 else "missed", "met" if results["mp-fast"]["median_ms"] <= 5.0
        else "missed"))  # fmt: skip


def main(argv: Optional[List[str]] = None) -> int:
    import cv2

    from calib.video import write_test_video

    parser = argparse.ArgumentParser(prog="bench_align", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=Path("build/demo"))
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=11.0, help="length of the test videos")
    parser.add_argument("--skip-realtime", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-pair", action="store_true")
    args = parser.parse_args(argv)

    cv2.setNumThreads(1)
    print(f"load average at start (1/5/15 min): {_load()} on {os.cpu_count()} cores")
    if not args.skip_pair:
        _pair_timing(args.repeats)
    if not args.skip_search:
        print("full-frame face search, tiling detector compared (faces 80/170/400 px, 2 photos)")
        for model, r in search_comparison().items():
            print(
                f"  {model:12s} calls 720p {r['calls_720p']:3d} 1080p {r['calls_1080p']:3d}   "
                f"ms 720p {r['ms_720p']:7.1f} 1080p {r['ms_1080p']:7.1f}   found {r['found']:.0%}"
            )

    with tempfile.TemporaryDirectory() as tmp:
        videos = {}
        for name, size, face_px, centre in VIDEOS:
            videos[name] = write_test_video(
                Path(tmp) / (name.replace("/", "_") + ".mp4"), size=size, face_px=face_px,
                centre=centre, seconds=args.seconds, events=EVENTS, drift_px=6.0,
                drift_period_s=10.0,
            )  # fmt: skip
        print(
            "aligner cost per frame in edge-run (track + register per track + warp; decode "
            f"excluded), {args.seconds:.0f} s videos, face drifting +-6 px, 1 thread"
        )
        per_frame: Dict[Tuple[str, str], float] = {}
        for name in videos:
            row = []
            for aligner in ("mediapipe", "mediapipe-fast"):
                r = aligner_per_frame(videos[name].path, aligner)
                per_frame[name, aligner] = r["ms_per_frame"]
                row.append(f"{aligner} {r['ms_per_frame']:5.2f} ms (found {r['found']:.1%})")
            print(f"  {name:10s} " + "   ".join(row))
        fast_1080 = per_frame["1080p/100", "mediapipe-fast"]
        print(
            "  target: <= 5 ms per frame in fast mode at 1080p: {} ({:.2f} ms)".format(
                "met" if fast_1080 <= 5.0 else "missed", fast_1080
            )
        )
        if not args.skip_realtime:
            if not (args.bundle / "manifest.json").is_file():
                print(f"{args.bundle}: no bundle; run edge-build first", file=sys.stderr)
                return 1
            cv2.setNumThreads(0)
            for name in ("720p/170", "1080p/100"):
                s = _realtime(args.bundle, args.precision, videos[name])
                print(
                    "edge-run on {} ({} frames, {:.1f} s): {:.2f}x real time, face found in "
                    "{:.1%} of frames, {} px; events at {} (planted {}): {} of {} within 10 "
                    "frames, {} false".format(
                        name, s["frames"], s["duration_s"], s["realtime_factor"],
                        1 - s["no_face_frames"] / max(1, s["frames"]), s["face_px"],
                        s["found_apexes"], s["planted_apexes"], s["hits"],
                        len(s["planted_apexes"]), s["false_events"],
                    )
                )  # fmt: skip
                print("  per-call stage ms: " + json.dumps(s["stage_ms"]) + f"  [{s['executor']}]")
    print(f"load average at end (1/5/15 min): {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
