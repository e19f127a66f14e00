"""`edge-serve`: a bundle behind a real Triton Inference Server (PyTriton, the fleet extra).

    edge-serve --bundle DIR [--backend ort|trt] [--http-port P] [--grpc-port Q] [--max-batch N]

Clients speak Triton's KServe v2 protocol over HTTP or gRPC (tritonclient, perf_analyzer,
curl); `/v2/health/ready` and Prometheus `/metrics` come with it. Binds 127.0.0.1 unless
`--host` says otherwise; SIGTERM or SIGINT stops Triton and exits 0.
Exit codes: 0 stopped cleanly, 1 a one-line reason, 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
from pathlib import Path
from typing import List, Optional

from edge.bundle import Bundle
from edge.errors import EdgeBuildError

__all__ = ["build_parser", "main"]

MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-serve",
        description="Serve a bundle's model through a Triton Inference Server (PyTriton).",
    )
    parser.add_argument("--bundle", type=Path, required=True, help="bundle directory")
    parser.add_argument(
        "--backend",
        choices=("ort", "trt"),
        default="ort",
        help="ort = ONNX Runtime (CUDA when available, else CPU); trt = the bundle's TensorRT "
        "engine for this device",
    )
    parser.add_argument("--precision", default="fp32", help="bundle model to serve")
    parser.add_argument("--model-name", help="Triton model name (default: the bundle's arch)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default %(default)s: this host only)"
    )
    parser.add_argument("--http-port", type=_port, default=8000)
    parser.add_argument("--grpc-port", type=_port, default=8001)
    parser.add_argument("--metrics-port", type=_port, default=8002)
    parser.add_argument(
        "--max-batch", type=int, default=8, help="largest batch Triton's dynamic batcher forms"
    )
    parser.add_argument(
        "--queue-delay-us",
        type=int,
        default=0,
        help="how long a request may wait for others to batch with (microseconds)",
    )
    parser.add_argument("--threads", type=int, help="inference threads (ONNX Runtime)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_batch < 1:
        parser.error(f"--max-batch must be >= 1, got {args.max_batch}")
    if args.queue_delay_us < 0:
        parser.error("--queue-delay-us must be >= 0")
    if args.model_name is not None and not MODEL_NAME.match(args.model_name):
        parser.error("--model-name may hold only letters, digits, '.', '_' and '-'")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from edge.fleet.serve import ServeOptions, serve_runner
    from edge.runtime import make_runner

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        bundle = Bundle.load(args.bundle)
        options = ServeOptions(
            model_name=args.model_name or str(bundle.manifest["model"]["arch"]),
            host=args.host,
            http_port=args.http_port,
            grpc_port=args.grpc_port,
            metrics_port=args.metrics_port,
            max_batch=args.max_batch,
            queue_delay_us=args.queue_delay_us,
        )
        runner = make_runner(bundle, args.backend, args.precision, threads=args.threads)

        def ready(mode: str) -> None:
            urls = options.urls()
            print(
                f"edge-serve: {options.model_name} ({args.precision}, "
                f"{getattr(runner, 'executor', runner.name)}) ready: HTTP {urls['http']}, "
                f"gRPC {urls['grpc']}, metrics {urls['metrics']}; dynamic batching up to "
                f"{options.max_batch}, executed {mode}",
                file=sys.stderr,
                flush=True,
            )

        serve_runner(runner, bundle.spec, options, stop=stop, on_ready=ready)
    except EdgeBuildError as exc:
        print(f"edge-serve: error: {exc}", file=sys.stderr)
        return 1
    print("edge-serve: stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
