"""Host benchmark: optical flow per onset/apex pair, each method side by side in one run, as
ratios against DIS.

    .venv/bin/python -m benchmarks.bench_flow [--repeats 100] [--sizes 112,28,224] [--json FILE]

The pair is a real face photograph with a synthetic micro-expression (`calib.faces`, 1.5 px at
224), resized to each size. Two timings per method and size, and one accuracy figure:

* `flow`: the method alone on the grey pair at that size (what a faster method would replace);
* `inputs`: what the runtime pays per event for a flow model with `flow.size` at that size and a
  28x28 input: resize from the 224 crops, grey, flow, strain, resample, scale and clip
  (`edge.flow.flow_fields`);
* `epe`: mean endpoint error (px at that size) against the displacement the pair was rendered
  with, over the pixels that move by more than a quarter of the peak, and `found`: the mean
  flow magnitude there relative to the truth's (below 1: the method underestimates the motion).

OpenCV runs with its default thread count (reported); the machine's load average before and
after is reported too, since other work on a shared machine slows every method.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from benchmarks import bench_preproc

__all__ = ["time_ms", "measure", "main"]

INPUT_SIZE = (28, 28)


def time_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> Dict[str, float]:
    """p50 and p90 wall time of `fn` in ms, by `bench_preproc`'s timer."""
    timed = bench_preproc.time_ms(fn, repeats, warmup)
    return {"p50_ms": timed["median_ms"], "p90_ms": timed["p90_ms"]}


def _available(method: str) -> Optional[str]:
    """None when `method` runs here, else why not."""
    from edge.errors import EdgeBuildError
    from edge.flow import dense_flow

    probe = np.zeros((16, 16), np.uint8)
    try:
        dense_flow(probe, probe, method)
    except EdgeBuildError as exc:
        return str(exc)
    return None


def measure(
    sizes: Sequence[int], methods: Sequence[str], repeats: int
) -> Dict[str, Dict[str, Dict[str, object]]]:
    """size -> method -> {flow: {p50_ms, p90_ms}, inputs: {...}, ratios vs DIS}."""
    from calib.faces import micro_expression_field, micro_expression_pair
    from edge.flow import dense_flow, flow_fields, grey
    from edge.preprocess import resize_frame
    from edge.spec import FlowSettings

    onset, apex = micro_expression_pair("astronaut", size=224, amplitude_px=1.5)
    truth224 = np.stack(micro_expression_field("astronaut", size=224, amplitude_px=1.5), axis=2)
    results: Dict[str, Dict[str, Dict[str, object]]] = {}
    for size in sizes:
        a, b = (grey(resize_frame(f, (size, size))) for f in (onset, apex))
        truth = resize_frame(truth224, (size, size)) * np.float32(size / 224.0)
        magnitude = np.linalg.norm(truth, axis=2)
        moving = magnitude > 0.25 * magnitude.max()
        row: Dict[str, Dict[str, object]] = {}
        for method in methods:
            settings = FlowSettings(method=method, size=(size, size))
            found = dense_flow(a, b, method)
            row[method] = {
                "flow": time_ms(lambda m=method, a=a, b=b: dense_flow(a, b, m), repeats),
                "inputs": time_ms(
                    lambda s=settings: flow_fields(onset, apex, s, INPUT_SIZE), repeats
                ),
                "epe_px": round(float(np.linalg.norm(found - truth, axis=2)[moving].mean()), 3),
                "found": round(
                    float(np.linalg.norm(found, axis=2)[moving].mean() / magnitude[moving].mean()),
                    2,
                ),
            }
        base = row.get("dis")
        for entry in row.values():
            if base is not None:
                entry["flow_vs_dis"] = round(
                    entry["flow"]["p50_ms"] / base["flow"]["p50_ms"],
                    2,  # type: ignore[index]
                )
                entry["inputs_vs_dis"] = round(
                    entry["inputs"]["p50_ms"] / base["inputs"]["p50_ms"],
                    2,  # type: ignore[index]
                )
        results[f"{size}x{size}"] = row
    return results


def _table(results: Dict[str, Dict[str, Dict[str, object]]]) -> str:
    lines = [
        "| flow size | method | flow p50 / p90 ms | vs DIS | inputs p50 / p90 ms | vs DIS "
        "| EPE px | found |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, row in results.items():
        for method, e in row.items():
            flow, inputs = e["flow"], e["inputs"]
            lines.append(
                "| {} | {} | {:.3f} / {:.3f} | {} | {:.3f} / {:.3f} | {} | {} | {} |".format(
                    size,
                    method,
                    flow["p50_ms"],
                    flow["p90_ms"],  # type: ignore[index]
                    e.get("flow_vs_dis", "-"),
                    inputs["p50_ms"],
                    inputs["p90_ms"],  # type: ignore[index]
                    e.get("inputs_vs_dis", "-"),
                    e["epe_px"],
                    e["found"],
                )  # fmt: skip
            )
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_flow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=100, help="timed runs per case")
    parser.add_argument(
        "--sizes", default="112,28,224", help="square flow sizes, comma-separated (px)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be integers separated by commas, got {args.sizes!r}")
    if args.repeats < 1 or not sizes or min(sizes) < 8:
        parser.error("--repeats must be >= 1 and every size >= 8")

    import cv2

    from edge.flow import methods

    runnable, skipped = [], {}
    for method in methods():
        reason = _available(method)
        if reason is None:
            runnable.append(method)
        else:
            skipped[method] = reason
    runnable.sort(key=lambda m: (m != "dis", m))  # DIS first: the ratios' reference
    load_before = os.getloadavg()
    results = measure(sizes, runnable, args.repeats)
    load_after = os.getloadavg()
    report = {
        "benchmark": "optical flow per onset/apex pair",
        "input_size": list(INPUT_SIZE),
        "repeats": args.repeats,
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "cpus": os.cpu_count(),
        "load_average_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        "skipped": skipped,
        "results": results,
    }
    print(
        "optical flow per onset/apex pair: {} runs each, OpenCV {} ({} threads), {} CPUs, "
        "load average {} -> {}".format(
            args.repeats,
            cv2.__version__,
            report["opencv_threads"],
            report["cpus"],
            *report["load_average_1m"],
        )  # fmt: skip
    )
    print(_table(results))
    for method, reason in skipped.items():
        print(f"{method}: not run ({reason})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
