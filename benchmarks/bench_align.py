"""Host benchmark: alignment + preprocessing of an onset/apex pair, single-threaded, MediaPipe
(OpenCV dnn) against dlib HOG + 5 points, as ratios from one run; then `edge-run`'s real-time
factor on the generated 720p 30 fps test video.

    .venv/bin/python -m benchmarks.bench_align [--bundle build/demo] [--precision fp32]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

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


def _realtime(bundle: Path, precision: str, out: Path) -> Dict[str, object]:
    from calib.video import write_test_video
    from edge.cli.run import main as run_main

    video = write_test_video(out / "bench.mp4")
    events = out / "events.jsonl"
    code = run_main(
        [
            "--bundle",
            str(bundle),
            str(video.path),
            "--precision",
            precision,
            "--events-out",
            str(events),
        ]
    )
    if code != 0:
        raise RuntimeError(f"edge-run exited {code}")
    records = [json.loads(line) for line in events.read_text().splitlines()]
    summary = records[-1]
    summary["planted_apexes"] = [e.apex for e in video.events]
    summary["found_apexes"] = [r["apex_frame"] for r in records if r["type"] == "event"]
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    import cv2

    from edge.align import DlibAligner, MediaPipeAligner

    parser = argparse.ArgumentParser(prog="bench_align", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=Path("build/demo"))
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--skip-realtime", action="store_true")
    args = parser.parse_args(argv)

    cv2.setNumThreads(1)
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
    results = {
        name: time_pair(make(), onset, apex, args.repeats) for name, make in aligners.items()
    }
    print(
        f"alignment + preprocessing of an onset/apex pair (512x512 photo, 1 thread, {args.repeats} runs)"
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

    if not args.skip_realtime:
        if not (args.bundle / "manifest.json").is_file():
            print(f"{args.bundle}: no bundle; run edge-build first", file=sys.stderr)
            return 1
        cv2.setNumThreads(0)
        with tempfile.TemporaryDirectory() as tmp:
            s = _realtime(args.bundle, args.precision, Path(tmp))
        print(
            "edge-run on the 720p 30 fps test video ({} frames, {:.1f} s): {:.2f}x real time, "
            "{} events at apex {} (planted {})".format(
                s["frames"],
                s["duration_s"],
                s["realtime_factor"],
                s["events"],
                s["found_apexes"],
                s["planted_apexes"],
            )
        )
        print("  per-frame stage ms: " + json.dumps(s["stage_ms"]) + f"  [{s['executor']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
