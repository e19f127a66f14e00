"""Proxy speed-ups of a bundle's precisions on the host: ONNX Runtime CPU, ratios from one run.

Run: `python -m benchmarks.bench_proxy [--bundle DIR] [--rounds 5] [--iterations 20]`.
Without `--bundle` the built-in demo is built into a temporary directory first. Every precision
gets its own active runner and the rounds interleave them (fp32, fp16, int8, fp32, ...), so
drift in the machine's speed (other jobs, thermal state) hits all precisions alike and the
printed ratios stay comparable between runs even when the milliseconds do not. The per-round
ratio range shows how much to trust each speed-up. These are CPU proxies: TensorRT speed-ups
on a Jetson are measured there with `edge-bench`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from benchmarks.latency import measure_latency, summarize
from edge.bundle import Bundle
from edge.preprocess import prepare_inputs
from edge.runtime import make_runner

__all__ = ["main", "proxy_speedups"]


def proxy_speedups(
    bundle: Bundle, *, rounds: int, iterations: int, threads: Optional[int] = None
) -> Dict[str, Dict[str, object]]:
    """Per precision: the summary of all samples and each round's p50, rounds interleaved."""
    spec = bundle.spec
    reference = np.load(bundle.path(bundle.manifest["reference"]["file"]))
    feeds = prepare_inputs(spec, dict(zip(spec.preprocessing.frames, reference["frames"][0])))
    precisions = list(bundle.manifest["models"])
    runners = {
        p: make_runner(bundle, "ort", p, threads=threads, providers=None) for p in precisions
    }
    samples: Dict[str, List[float]] = {p: [] for p in precisions}
    round_p50s: Dict[str, List[float]] = {p: [] for p in precisions}
    for runner in runners.values():
        runner.activate()
    try:
        for _ in range(rounds):
            for p in precisions:
                res = measure_latency(runners[p], feeds, iterations=iterations, warmup_iterations=2)
                samples[p].extend(res.samples_ms)
                round_p50s[p].append(res.p50_ms)
    finally:
        for runner in runners.values():
            runner.deactivate()
    return {p: {"summary": summarize(samples[p]), "round_p50s": round_p50s[p]} for p in precisions}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.bundle
        if path is None:
            from quantize.pipeline import BuildConfig, build_bundle
            from quantize.progress import Progress

            path = Path(tmp) / "demo"
            build_bundle(BuildConfig(out=path), progress=Progress(5, quiet=True))
        bundle = Bundle.load(path)
        results = proxy_speedups(
            bundle, rounds=args.rounds, iterations=args.iterations, threads=args.threads
        )
    base_name = "fp32" if "fp32" in results else next(iter(results))
    base = results[base_name]
    print(
        f"{bundle.spec.arch} {bundle.spec.variant}, ONNX Runtime CPU, "
        f"{args.rounds} interleaved rounds x {args.iterations} runs, ms per inference"
    )
    print(
        "{:<9} {:>8} {:>8} {:>8}  {:>9}  {:>15}".format(
            "precision", "p50", "p90", "mean", f"vs {base_name}", "per-round range"
        )
    )
    for name, res in results.items():
        s = res["summary"]
        ratios = [b / m for b, m in zip(base["round_p50s"], res["round_p50s"])]
        print(
            "{:<9} {:>8.3g} {:>8.3g} {:>8.3g}  {:>8.2f}x  {:>6.2f}x-{:.2f}x".format(
                name,
                s["p50"],
                s["p90"],
                s["mean"],
                base["summary"]["p50"] / s["p50"],
                min(ratios),
                max(ratios),
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
