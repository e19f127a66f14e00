"""One bundle behind a real Triton Inference Server, through PyTriton.

PyTriton's wheel carries `tritonserver` and its Python backend; the model itself runs in this
process through the bundle's Runner, so ONNX Runtime and TensorRT serve the same way. Triton
does the HTTP/gRPC protocol, dynamic batching, health and Prometheus metrics.
"""

from __future__ import annotations

import logging
import os
import socket
import sysconfig
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, MutableMapping, Optional

import numpy as np

from edge._lazy import require
from edge.errors import EdgeBuildError
from edge.fleet.tensors import by_name, has_batch_axis, served_outputs, triton_tensors
from edge.runtime.base import Runner
from edge.spec import ModelSpec

__all__ = ["ServeOptions", "BatchedModel", "ensure_libpython_on_path", "serve_runner"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    """Where Triton listens and how it batches. Localhost unless told otherwise."""

    model_name: str
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 8
    queue_delay_us: int = 0

    def urls(self) -> Dict[str, str]:
        return {
            "http": f"http://{self.host}:{self.http_port}",
            "grpc": f"{self.host}:{self.grpc_port}",
            "metrics": f"http://{self.host}:{self.metrics_port}/metrics",
        }


def ensure_libpython_on_path(environ: Optional[MutableMapping[str, str]] = None) -> Optional[str]:
    """Put this interpreter's libpython first on LD_LIBRARY_PATH for Triton's Python backend.

    The backend stub links `libpython3.X.so.1.0` by soname. When this interpreter (pyenv, a
    venv of a self-built Python) is not the system's, the loader finds the system library of
    another patch release and the stub fails inside the standard library. Returns the
    directory added, or None when this Python has no shared libpython to offer.
    """
    environ = os.environ if environ is None else environ
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        log.warning(
            "this Python has no shared libpython; Triton's Python backend will load the "
            "system's libpython%s, which must be the same release",
            sysconfig.get_python_version(),
        )
        return None
    libdir = sysconfig.get_config_var("LIBDIR")
    library = sysconfig.get_config_var("LDLIBRARY")
    if not libdir or not library or not (Path(libdir) / library).exists():
        return None
    parts = [p for p in environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    if not parts or parts[0] != libdir:
        environ["LD_LIBRARY_PATH"] = os.pathsep.join([libdir] + [p for p in parts if p != libdir])
    return libdir


def _check_port_free(host: str, port: int, flag: str) -> None:
    """Fail before starting Triton: a taken port makes it exit after a long wait."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise EdgeBuildError(
                f"cannot listen on {host}:{port} ({exc}); pass another {flag}"
            ) from exc


class BatchedModel:
    """Triton's batches through a Runner: whole when the model has a batch axis, else
    sample by sample (Triton still merges the requests; the model then runs them in turn)."""

    def __init__(self, runner: Runner, output_names: List[str], *, batch_axis: bool) -> None:
        self.runner = runner
        self.output_names = output_names
        self.batch_axis = batch_axis

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        if self.batch_axis:
            outputs = self.runner.infer(inputs)
            return {n: outputs[n] for n in self.output_names}
        count = len(next(iter(inputs.values())))
        runs = [
            self.runner.infer({k: v[i : i + 1] for k, v in inputs.items()}) for i in range(count)
        ]
        return {n: np.concatenate([r[n] for r in runs]) for n in self.output_names}


def serve_runner(
    runner: Runner,
    spec: ModelSpec,
    options: ServeOptions,
    *,
    stop: threading.Event,
    on_ready: Optional[Callable[[str], None]] = None,
) -> None:
    """Serve `runner` (not yet active) until `stop` is set; Triton is stopped on the way out.

    Raises:
        EdgeBuildError: a port is taken, or Triton or its model died while serving.
        MissingDependencyError: the fleet extra is not installed.
    """
    if options.max_batch < 1:
        raise EdgeBuildError(f"--max-batch must be >= 1, got {options.max_batch}")
    for port, flag in (
        (options.http_port, "--http-port"),
        (options.grpc_port, "--grpc-port"),
        (options.metrics_port, "--metrics-port"),
    ):
        _check_port_free(options.host, port, flag)
    require("pytriton", purpose="edge-serve")
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    ensure_libpython_on_path()
    with runner:
        input_specs = list(runner.inputs.values())
        output_specs = by_name(runner.outputs, served_outputs(spec))
        model = BatchedModel(
            runner, [t.name for t in output_specs], batch_axis=has_batch_axis(input_specs)
        )

        @batch
        def infer(**inputs: np.ndarray) -> Dict[str, np.ndarray]:
            return model(inputs)

        def tensors(specs) -> list:
            return [
                Tensor(name=t.name, dtype=np.dtype(t.dtype), shape=t.dims)
                for t in triton_tensors(specs, batching=True)
            ]

        config = TritonConfig(
            http_address=options.host,
            http_port=options.http_port,
            grpc_address=options.host,
            grpc_port=options.grpc_port,
            metrics_address=options.host,
            metrics_port=options.metrics_port,
            allow_metrics=True,
            exit_timeout_secs=5,
        )
        with Triton(config=config) as triton:
            triton.bind(
                model_name=options.model_name,
                infer_func=infer,
                inputs=tensors(input_specs),
                outputs=tensors(output_specs),
                config=ModelConfig(
                    max_batch_size=options.max_batch,
                    batcher=DynamicBatcher(max_queue_delay_microseconds=options.queue_delay_us),
                ),
                strict=True,
            )
            triton.run()
            if on_ready is not None:
                on_ready("batched" if model.batch_axis else "sample by sample (fixed-batch model)")
            while not stop.wait(1.0):
                if not triton.is_alive():
                    raise EdgeBuildError("the Triton server or its model stopped unexpectedly")
