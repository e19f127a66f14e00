"""Host/device benchmark: 1080p BGR frames -> 224x224 normalised RGB crops, OpenCV's CPU path
(as the runtime does it: warp_face, BGR->RGB, normalize_frame) against the edge_preproc
library, as ratios from one run.

    .venv/bin/python -m benchmarks.bench_preproc [--lib-dir build/native] [--repeats 200]

Two workloads: one frame, and an event's pair (onset and apex, one alignment), which the
library does in one batch call. The CPU build of the library is timed wherever it exists; the
CUDA build only where it loads and sees a GPU: host pointers (pack the needed frame region into
pinned memory, copy, kernel, copy back into a numpy array) and device pointers (frames already on
the GPU: kernel only, synchronised).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

__all__ = ["time_ms", "main"]

MEAN, STD, SCALE = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1.0 / 255.0
SIZE = (224, 224)


def time_ms(fn: Callable[[], object], repeats: int, warmup: int = 10) -> Dict[str, float]:
    """Median and p90 wall time of `fn` in ms (perf_counter_ns), after `warmup` calls."""
    for _ in range(warmup):
        fn()
    samples: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(samples), 4),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 4),
    }


def _frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1080, 0:1920]
    base = ((xx // 3 + yy // 2) % 256).astype(np.uint8)
    frame = np.stack([base, base[::-1], np.roll(base, 100, axis=1)], axis=2)
    return np.clip(frame.astype(np.int16) + rng.integers(-8, 8, frame.shape), 0, 255).astype(
        np.uint8
    )


def _face_matrix() -> np.ndarray:
    """A 450-pixel face box centred at (960, 500), slightly rotated, onto the 224 crop."""
    scale, angle = 224 / 450.0, 0.1
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, 112 - (c * 960 - s * 500)], [s, c, 112 - (s * 960 + c * 500)]])


def _device_fn(pre, frames: List[np.ndarray], matrix: np.ndarray) -> Optional[Callable[[], None]]:
    """Kernel-only timing: the frames are copied to the GPU once, outside the timed call."""
    from edge.native.preproc import COLORS, _Image

    lib = pre._lib
    d_frames = [ctypes.c_void_p() for _ in frames]
    d_out = ctypes.c_void_p()
    for d_frame, frame in zip(d_frames, frames):
        if lib.edge_preproc_device_alloc(frame.nbytes, ctypes.byref(d_frame)) != 0:
            return None
        lib.edge_preproc_copy_to_device(d_frame, frame.ctypes.data, frame.nbytes)
    lib.edge_preproc_device_alloc(len(frames) * 3 * SIZE[0] * SIZE[1] * 4, ctypes.byref(d_out))
    images = (_Image * len(frames))(
        *(
            _Image(d.value, f.shape[1], f.shape[0], COLORS["BGR"], 0, f.strides[0])
            for d, f in zip(d_frames, frames)
        )
    )
    params = pre._params(matrix, SIZE, MEAN, STD, SCALE, "RGB", np.float32, "replicate")

    def run() -> None:
        lib.edge_preproc_warp_normalize_batch_device(
            images, len(frames), ctypes.byref(params), d_out, None
        )
        lib.edge_preproc_synchronize()

    return run


def _raw_host_fn(pre, frame: np.ndarray, matrix: np.ndarray) -> Callable[[], None]:
    image, _ = pre._image(frame, "BGR")
    params = pre._params(matrix, SIZE, MEAN, STD, SCALE, "RGB", np.float32, "replicate")
    out = np.empty((3, SIZE[0], SIZE[1]), np.float32)
    lib, ctx = pre._lib, pre._ctx

    def run() -> None:
        lib.edge_preproc_warp_normalize(
            ctx, ctypes.byref(image), ctypes.byref(params), out.ctypes.data
        )

    return run


def _gpu_name() -> str:
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return "none"
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.stdout.strip() or "unknown"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib-dir", type=Path, default=None, help="directory with the libraries")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)

    import cv2

    from edge.align.template import warp_face
    from edge.errors import EdgeBuildError
    from edge.native.preproc import LIB_NAMES, NativePreprocessor
    from edge.preprocess import normalize_frame
    from edge.spec import Preprocessing

    frame, matrix = _frame(), _face_matrix()
    apex = np.ascontiguousarray(np.roll(frame, 3, axis=1))
    prep = Preprocessing(size=SIZE, mean=MEAN, std=STD, scale=SCALE)

    def opencv() -> np.ndarray:
        crop = cv2.cvtColor(warp_face(frame, matrix, SIZE), cv2.COLOR_BGR2RGB)
        return normalize_frame(crop, prep)

    def opencv_pair() -> np.ndarray:
        crops = [cv2.cvtColor(warp_face(f, matrix, SIZE), cv2.COLOR_BGR2RGB) for f in (frame, apex)]
        return np.stack([normalize_frame(c, prep) for c in crops])

    reference, reference_pair = opencv(), opencv_pair()
    results: Dict[str, Dict[str, float]] = {
        "opencv": time_ms(opencv, args.repeats),
        "opencv-pair": time_ms(opencv_pair, args.repeats),
    }
    notes: Dict[str, str] = {}
    for backend in ("cpu", "cuda"):
        path = args.lib_dir / LIB_NAMES[backend] if args.lib_dir else None
        try:
            pre = NativePreprocessor(backend, path=path)
        except EdgeBuildError as exc:
            notes[backend] = f"not timed: {exc}"
            continue
        with pre:

            def native(pre=pre) -> np.ndarray:
                return pre.warp_normalize(frame, matrix, SIZE, MEAN, STD, SCALE, "BGR")

            def native_pair(pre=pre) -> np.ndarray:
                return pre.warp_normalize_batch(
                    [frame, apex], matrix, SIZE, MEAN, STD, SCALE, "BGR"
                )

            name = "native-" + backend + ("-host-pointers" if backend == "cuda" else "")
            diff = float(np.abs(native() - reference).max())
            results[name] = dict(time_ms(native, args.repeats), max_abs_diff=diff)
            diff = float(np.abs(native_pair() - reference_pair).max())
            results[name + "-pair"] = dict(time_ms(native_pair, args.repeats), max_abs_diff=diff)
            if backend == "cuda":
                # the C call alone: structs prepared once, output array reused (what the
                # Python wrapper's argument handling and allocation cost is the difference)
                raw = _raw_host_fn(pre, frame, matrix)
                results["native-cuda-host-pointers-raw-call"] = time_ms(raw, args.repeats)
                for suffix, frames in (("", [frame]), ("-pair", [frame, apex])):
                    device = _device_fn(pre, frames, matrix)
                    if device is not None:
                        results["native-cuda-device-pointers" + suffix] = time_ms(
                            device, args.repeats
                        )

    def speedup(name: str) -> float:
        base = results["opencv-pair" if name.endswith("-pair") else "opencv"]["median_ms"]
        return round(base / results[name]["median_ms"], 2)

    report = {
        "input": "1920x1080 BGR uint8 -> 3x224x224 float32 RGB, ImageNet mean/std; "
        "-pair: onset and apex, one alignment",
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "cpu_count": os.cpu_count(),
        "gpu": _gpu_name(),
        "results": results,
        "speedup_vs_opencv": {k: speedup(k) for k in results if not k.startswith("opencv")},
        "notes": notes,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
