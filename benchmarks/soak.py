"""Soak benchmark: `edge-run` over >= 10,000 frames of a generated video, watched from outside.

The video (640x360 by default, to keep the run a few minutes) has a drifting face that leaves
the frame for 2 s every minute and a micro-expression every 4 s, so clips, registrations,
searches and events all repeat hundreds of times. `edge-run` runs as a child process; its
resident memory (VmRSS) and open file descriptors are sampled from /proc twice a second.
"Start" is the sample at 10% of the run (models loaded, first clips done), "end" the one at 95%
(still running: the last samples can fall in the exit, where memory and files are released).

    .venv/bin/python -m benchmarks.soak [--bundle build/demo] [--frames 10000]

Targets: RSS growth from start to end <= 5%; the same number of open files at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

__all__ = ["sample", "soak", "main"]


def sample(pid: int) -> Optional[Tuple[int, int]]:
    """(VmRSS in KiB, open file descriptors) of a live process, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None


def soak(bundle: Path, video: Path, events: Path, aligner: str) -> Dict[str, object]:
    """Run edge-run to the end of `video`, sampling it; returns the samples and its summary."""
    command = [
        sys.executable, "-m", "edge.cli.run", "--bundle", str(bundle), str(video),
        "--aligner", aligner, "--events-out", str(events),
    ]  # fmt: skip
    started = time.monotonic()
    samples: List[Tuple[float, int, int]] = []
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as child:
        while child.poll() is None:
            now = sample(child.pid)
            if now is not None:
                samples.append((time.monotonic() - started, now[0], now[1]))
            time.sleep(0.5)
        stderr = child.stderr.read() if child.stderr else ""
        code = child.returncode
    if code != 0:
        raise RuntimeError(f"edge-run exited {code}: {stderr.strip()[-2000:]}")
    records = [json.loads(line) for line in events.read_text().splitlines()]
    return {"samples": samples, "summary": records[-1], "records": records, "stderr": stderr}


def main(argv: Optional[List[str]] = None) -> int:
    from benchmarks.bench_align import match_events
    from calib.video import write_test_video

    parser = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=Path("build/demo"))
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--size", default="640x360", help="frame size WxH")
    parser.add_argument("--aligner", default="mediapipe-fast")
    args = parser.parse_args(argv)
    if not (args.bundle / "manifest.json").is_file():
        print(f"{args.bundle}: no bundle; run edge-build first", file=sys.stderr)
        return 1
    if not Path("/proc/self/status").is_file():
        print("soak: needs Linux /proc to watch the process", file=sys.stderr)
        return 1
    width, height = (int(v) for v in args.size.lower().split("x"))
    fps = 30.0
    seconds = args.frames / fps
    minutes = int(seconds // 60)
    hidden = [
        (int((m + 0.5) * 60 * fps), int((m + 0.5) * 60 * fps + 2 * fps)) for m in range(minutes)
    ]
    events = [
        (int(t * fps), 5)
        for t in range(3, int(seconds) - 1, 4)
        if all(not (a - 30 <= int(t * fps) <= b + 60) for a, b in hidden)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        video = write_test_video(
            Path(tmp) / "soak.mp4", size=(width, height), face_px=min(height // 2, 170),
            seconds=seconds, events=events, hidden=hidden, drift_px=6.0, drift_period_s=10.0,
        )  # fmt: skip
        print(
            f"video: {video.frames} frames {width}x{height} at {fps:.0f} fps, "
            f"{len(video.events)} planted events, face hidden {len(hidden)} times "
            f"(written in {time.monotonic() - start:.0f} s)"
        )
        result = soak(args.bundle, video.path, Path(tmp) / "events.jsonl", args.aligner)
    samples = result["samples"]
    summary = result["summary"]
    if len(samples) < 4:
        print("soak: the run was too short to sample", file=sys.stderr)
        return 1
    total = samples[-1][0]
    first = next(s for s in samples if s[0] >= 0.1 * total)
    last = [s for s in samples if s[0] <= 0.95 * total][-1]
    peak = max(s[1] for s in samples)
    growth = (last[1] - first[1]) / first[1]
    print(
        "edge-run: {} frames, {} clips, {} events, {} no-face frames, {:.2f}x real time "
        "[{}]".format(
            summary["frames"], summary["clips"], summary["events"], summary["no_face_frames"],
            summary["realtime_factor"], summary["executor"],
        )
    )  # fmt: skip
    planted = [e.apex for e in video.events]
    found = [r["apex_frame"] for r in result["records"] if r["type"] == "event"]
    hits, false = match_events(planted, found)
    print(f"events: {hits} of {len(planted)} planted found within 10 frames, {false} false")
    print(
        f"RSS: start (t={first[0]:.0f} s) {first[1] / 1024:.1f} MiB, end (t={last[0]:.0f} s) "
        f"{last[1] / 1024:.1f} MiB, growth {growth:+.2%}, peak {peak / 1024:.1f} MiB; "
        f"open files: start {first[2]}, end {last[2]} ({len(samples)} samples)"
    )
    ok_rss, ok_fd = growth <= 0.05, last[2] <= first[2]
    print(
        "targets: RSS growth <= 5%: {}; no leaked file handles: {}".format(
            "met" if ok_rss else "missed", "met" if ok_fd else "missed"
        )
    )
    return 0 if ok_rss and ok_fd else 1


if __name__ == "__main__":
    sys.exit(main())
