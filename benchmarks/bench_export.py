"""Wall time of the FP32 host stage for MMNet: export + parity + simplification, per target.

Run: `python -m benchmarks.bench_export [--repeats N]`. Every configuration runs in the same
process on the same model and faces, and the table prints each one's time as a ratio to the
default configuration (TensorRT 10 target, `auto` simplifier) measured in the same run, so a
regression in one step shows up as a changed ratio rather than a machine-dependent number.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from quantize.pipeline import BuildConfig, build_bundle
from quantize.progress import Progress

CONFIGS: Tuple[Tuple[str, str], ...] = (
    ("10", "auto"),
    ("10", "onnxslim"),
    ("10", "none"),
    ("8.5", "auto"),
    ("8.5", "onnxslim"),
)
STAGES = ("load", "export", "parity", "simplify", "bundle")


def measure(target: str, simplifier: str, repeats: int) -> Dict[str, float]:
    """Best-of-`repeats` seconds per stage, plus the total of the best run."""
    best: Optional[Dict[str, float]] = None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            progress = Progress(5, quiet=True)
            start = time.perf_counter()
            build_bundle(
                BuildConfig(out=Path(tmp) / "b", target_trt=target, simplifier=simplifier),
                progress=progress,
            )
            timings = dict(progress.timings)
            timings["total"] = time.perf_counter() - start
        if best is None or timings["total"] < best["total"]:
            best = timings
    assert best is not None
    return best


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    measure(*CONFIGS[0], repeats=1)  # warm-up: first imports and allocator growth
    rows = [(t, s, measure(t, s, args.repeats)) for t, s in CONFIGS]
    base = rows[0][2]["total"]
    header = "{:<7} {:<9} ".format("target", "simplify") + " ".join(
        f"{s:>9}" for s in STAGES + ("total",)
    )
    print(f"MMNet FP32 host stage, best of {args.repeats} runs, seconds")
    print(header + "  vs default")
    for target, simplifier, t in rows:
        cells = " ".join(f"{t.get(s, 0.0):>9.2f}" for s in STAGES + ("total",))
        print("{:<7} {:<9} {}  {:>6.2f}x".format(target, simplifier, cells, t["total"] / base))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
