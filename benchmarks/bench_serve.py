"""edge-serve (Triton via PyTriton, gRPC) against calling the ONNX Runtime runner in-process.

Run: `python -m benchmarks.bench_serve [--bundle DIR] [--concurrency 1 4 16] [--seconds 5]`.
Without `--bundle` the demo MMNet is built with a batch axis (`edge-build --dynamic-batch`)
into a temporary directory, so Triton's dynamic batching can hand the runner whole batches.
For each concurrency C, C client threads send one sample per request for `--seconds`:
"direct" threads share one active OrtRunner (ONNX Runtime sessions are thread-safe), "served"
threads each hold a tritonclient gRPC connection to an `edge-serve` subprocess on localhost
running the same model with the same thread setting. Modes alternate per concurrency in one
run and the table gives requests/s and p50/p99 latency with served/direct ratios.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from benchmarks.latency import summarize
from edge.bundle import Bundle
from edge.runtime import make_runner

__all__ = ["main", "closed_loop"]


def closed_loop(call: Callable[[], None], *, clients: int, seconds: float) -> Dict[str, float]:
    """`clients` threads calling `call` back to back for `seconds`: requests/s and latencies."""
    latencies: List[List[float]] = [[] for _ in range(clients)]
    start_gate = threading.Barrier(clients + 1)
    stop_at = [float("inf")]  # set once every client has warmed up

    def worker(index: int) -> None:
        call()  # warm-up request, not counted
        start_gate.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter_ns()
            call()
            latencies[index].append((time.perf_counter_ns() - t0) / 1e6)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    merged = [v for series in latencies for v in series]
    stats = summarize(merged)
    return {
        "rps": len(merged) / elapsed,
        "p50": stats["p50"],
        "p99": stats["p99"],
        "n": len(merged),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(bundle: Path, threads: Optional[int], max_batch: int, delay_us: int):
    ports = [_free_port() for _ in range(3)]
    command = [
        sys.executable, "-m", "edge.cli.serve", "--bundle", str(bundle),
        "--http-port", str(ports[0]), "--grpc-port", str(ports[1]),
        "--metrics-port", str(ports[2]), "--max-batch", str(max_batch),
        "--queue-delay-us", str(delay_us),
    ]  # fmt: skip
    if threads:
        command += ["--threads", str(threads)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    name = Bundle.load(bundle).manifest["model"]["arch"]
    url = f"http://127.0.0.1:{ports[0]}/v2/models/{name}/ready"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc, ports[1], name
        except OSError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit("edge-serve did not start:\n" + (proc.stderr.read() if proc.stderr else ""))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=5.0, help="per mode and concurrency")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--queue-delay-us", type=int, default=0)
    args = parser.parse_args(argv)

    import tritonclient.grpc as grpcclient

    with tempfile.TemporaryDirectory() as tmp:
        path = args.bundle
        if path is None:
            from quantize.pipeline import BuildConfig, build_bundle
            from quantize.progress import Progress

            path = Path(tmp) / "demo"
            config = BuildConfig(out=path, dynamic_batch=True, val_samples=0, calib_samples=0)
            build_bundle(config, progress=Progress(5, quiet=True))
        bundle = Bundle.load(path)
        rng = np.random.default_rng(0)
        sample = {
            t.name: rng.standard_normal((1,) + tuple(t.shape[1:])).astype(np.float32)
            for t in bundle.spec.inputs
        }
        server, grpc_port, model = _start_server(
            path, args.threads, args.max_batch, args.queue_delay_us
        )
        runner = make_runner(bundle, "ort", threads=args.threads)
        local = threading.local()

        def served() -> None:
            if not hasattr(local, "client"):
                local.client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
                local.inputs = []
                for name, value in sample.items():
                    tensor = grpcclient.InferInput(name, list(value.shape), "FP32")
                    tensor.set_data_from_numpy(value)
                    local.inputs.append(tensor)
            local.client.infer(model, local.inputs)

        results = {}
        load_before = os.getloadavg()
        try:
            with runner:
                executor = runner.executor
                for clients in args.concurrency:
                    results[clients] = {
                        "direct": closed_loop(
                            lambda: runner.infer(sample), clients=clients, seconds=args.seconds
                        ),
                        "served": closed_loop(served, clients=clients, seconds=args.seconds),
                    }
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        load_after = os.getloadavg()

    print(
        f"{bundle.spec.arch} {bundle.spec.variant}, {executor}; {os.cpu_count()} CPUs, "
        f"load average {load_before[0]:.1f} before / {load_after[0]:.1f} after; "
        f"{args.seconds:g} s per cell; edge-serve max batch {args.max_batch}, "
        f"queue delay {args.queue_delay_us} us, gRPC on localhost"
    )
    header = "{:>4}  {:>10} {:>9} {:>9}  {:>10} {:>9} {:>9}  {:>7} {:>7} {:>7}"
    print(
        header.format(
            "conc", "direct r/s", "p50 ms", "p99 ms", "served r/s", "p50 ms", "p99 ms",
            "r/s x", "p50 x", "p99 x",
        )
    )  # fmt: skip
    row = "{:>4}  {:>10.1f} {:>9.2f} {:>9.2f}  {:>10.1f} {:>9.2f} {:>9.2f}  {:>6.2f}x {:>6.2f}x {:>6.2f}x"
    for clients, res in results.items():
        d, s = res["direct"], res["served"]
        print(
            row.format(
                clients, d["rps"], d["p50"], d["p99"], s["rps"], s["p50"], s["p99"],
                s["rps"] / d["rps"], s["p50"] / d["p50"], s["p99"] / d["p99"],
            )
        )  # fmt: skip
    print("ratios are served / direct: r/s x < 1 means serving costs throughput")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
