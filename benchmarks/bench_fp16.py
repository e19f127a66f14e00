"""FP16 vs FP32 on ONNX Runtime CPU: top-1 agreement, logit error and latency ratio, one run.

Run: `python -m benchmarks.bench_fp16 --bundle DIR [--samples N] [--iterations 20]`, where DIR
is an FP32 bundle from `edge-build` (e.g. `edge-build --out /tmp/demo -q`). The FP16 ONNX is
made with `quantize.fp16` into a temporary directory. Accuracy runs on the bundle's own
validation split (`validation.npz`, disjoint from calibration) or, with `--samples N`, on N
fresh synthetic clips (seed `--seed`); the issue's target is >= 99.9% top-1 agreement.

Latency is a CPU proxy only: ONNX Runtime's CPU provider has few FP16 kernels and inserts
casts around the rest, so FP16 is usually no faster (often slower) than FP32 here. The FP16
speed-up is a GPU (Jetson TensorRT) property, measured there with `edge-bench`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from benchmarks.latency import measure_latency
from edge.bundle import Bundle
from edge.metrics import logit_errors, top1_agreement
from edge.runtime.ort import OrtRunner
from quantize.data import ValidationSet, synthetic_validation
from quantize.fp16 import DEFAULT_KEEP, fp16_from_onnx

__all__ = ["main", "run_fp16_benchmark"]

TARGET_AGREEMENT = 0.999


def _validation(bundle: Bundle, samples: int, seed: int) -> ValidationSet:
    if samples > 0:
        made = synthetic_validation(bundle.spec, samples, seed=seed)
        if made is None:
            raise SystemExit("this model's classes have no synthetic recipe: drop --samples")
        return made
    entry = bundle.manifest.get("validation") or {}
    data = np.load(bundle.path(entry.get("file", "validation.npz")))
    return ValidationSet(
        names=[str(n) for n in data["names"]],
        frames=data["frames"],
        labels=data["labels"],
        source=str(entry.get("source", "bundle validation split")),
    )


def _logits(runner: OrtRunner, feeds: Sequence[Dict[str, np.ndarray]], output: str) -> np.ndarray:
    return np.concatenate([runner.infer(f)[output] for f in feeds])


def run_fp16_benchmark(
    bundle_dir: Path,
    *,
    samples: int = 0,
    seed: int = 0,
    iterations: int = 20,
    threads: Optional[int] = None,
    keep_fp32_ops: Sequence[str] = DEFAULT_KEEP,
) -> Dict[str, object]:
    """Convert the bundle's FP32 ONNX to FP16 and compare both on ONNX Runtime CPU."""
    bundle = Bundle.load(bundle_dir)
    spec = bundle.spec
    opset = int(bundle.manifest["target"]["opset"])
    validation = _validation(bundle, samples, seed)
    feeds = validation.feeds(spec)
    output = spec.output_names()[0]
    with tempfile.TemporaryDirectory(prefix="bench-fp16-") as tmp:
        fp16_path = Path(tmp) / "model.fp16.onnx"
        conversion = fp16_from_onnx(
            bundle.onnx_path("fp32"), fp16_path, keep_fp32_ops=keep_fp32_ops, opset=opset
        )
        runners = {
            "fp32": OrtRunner(bundle.onnx_path("fp32"), threads=threads),
            "fp16": OrtRunner(fp16_path, threads=threads),
        }
        logits: Dict[str, np.ndarray] = {}
        latency: Dict[str, float] = {}
        executor = ""
        for name, runner in runners.items():
            with runner:
                executor = runner.executor
                logits[name] = _logits(runner, feeds, output)
                timed = measure_latency(runner, feeds[0], iterations=iterations)
                latency[name] = float(timed.p50_ms)
    errors = logit_errors(logits["fp32"], logits["fp16"])
    labels = validation.labels
    return {
        "executor": executor,
        "validation": validation.source,
        "samples": len(feeds),
        "opset": opset,
        "kept_fp32_nodes": len(conversion.kept_nodes),
        "top1_agreement": top1_agreement(logits["fp32"], logits["fp16"]),
        "max_abs_error": errors["max_abs_error"],
        "mean_abs_error": errors["mean_abs_error"],
        "min_cosine": errors["min_cosine"],
        "fp32_accuracy": float(np.mean(logits["fp32"].argmax(1) == labels)),
        "fp16_accuracy": float(np.mean(logits["fp16"].argmax(1) == labels)),
        "fp32_p50_ms": latency["fp32"],
        "fp16_p50_ms": latency["fp16"],
        "fp16_over_fp32_latency": latency["fp16"] / latency["fp32"],
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_fp16", description=__doc__)
    parser.add_argument("--bundle", type=Path, required=True, help="an FP32 bundle directory")
    parser.add_argument("--samples", type=int, default=0, help="fresh synthetic clips (0: bundle)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=20, help="timed inferences each")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    r = run_fp16_benchmark(
        args.bundle,
        samples=args.samples,
        seed=args.seed,
        iterations=args.iterations,
        threads=args.threads,
    )
    agreement = float(r["top1_agreement"])  # type: ignore[arg-type]
    verdict = "meets" if agreement >= TARGET_AGREEMENT else "MISSES"
    print(f"executor            {r['executor']}")
    print(f"validation          {r['samples']} clips, {r['validation']}; opset {r['opset']}")
    print(f"kept FP32           {r['kept_fp32_nodes']} nodes")
    print(f"top-1 agreement     {agreement:.2%} ({verdict} the >= {TARGET_AGREEMENT:.1%} target)")
    print(f"logit |error|       max {r['max_abs_error']:.3e}, mean {r['mean_abs_error']:.3e}")
    print(f"min cosine          {r['min_cosine']:.6f}")
    print(f"accuracy            FP32 {r['fp32_accuracy']:.1%}, FP16 {r['fp16_accuracy']:.1%}")
    print(
        f"latency p50 (CPU)   FP32 {r['fp32_p50_ms']:.1f} ms, FP16 {r['fp16_p50_ms']:.1f} ms, "
        f"ratio FP16/FP32 {r['fp16_over_fp32_latency']:.2f}x (CPU proxy: FP16 gains show on GPU)"
    )
    return 0 if agreement >= TARGET_AGREEMENT else 1


if __name__ == "__main__":
    sys.exit(main())
