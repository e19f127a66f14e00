"""One Runner interface for every backend, a registry that imports backends on demand, and the
one way to build a runner for a bundle (`make_runner`)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

from edge.errors import EdgeBuildError
from edge.runtime.base import STAGES, Runner

if TYPE_CHECKING:
    from edge.bundle import Bundle

__all__ = ["Runner", "STAGES", "BACKENDS", "runner_class", "make_runner"]

#: backend name -> "module:Class"; imported only when asked for.
BACKENDS = {
    "ort": "edge.runtime.ort:OrtRunner",
    "torch": "edge.runtime.torch_runner:TorchRunner",
    "trt": "edge.runtime.trt:TrtRunner",
}


def runner_class(backend: str) -> Any:
    if backend not in BACKENDS:
        raise EdgeBuildError(
            "unknown backend {!r}; available: {}".format(backend, ", ".join(sorted(BACKENDS)))
        )
    module_name, _, class_name = BACKENDS[backend].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_runner(
    bundle: Bundle,
    backend: str = "ort",
    precision: str = "fp32",
    *,
    threads: Optional[int] = None,
    checkpoint: Optional[str] = None,
    providers: Union[None, str, Sequence[str]] = "auto",
    **trt_options: Any,
) -> Runner:
    """The Runner (not yet active) for one of `bundle`'s models on `backend`.

    Args:
        bundle: a loaded bundle.
        backend: `ort` (the bundle's ONNX for `precision`), `torch` (the PyTorch reference the
            bundle was built from; FP32 whatever `precision` says) or `trt` (the engine built on
            this device for `precision`, chosen by its key in the manifest).
        precision: which of the bundle's models to run.
        threads: ONNX Runtime intra-op threads (None: its default).
        checkpoint: for `torch` on a bundle built from a checkpoint: that checkpoint.
        providers: ONNX Runtime providers; "auto" takes CUDA where this build offers it.
        trt_options: for `trt`: TrtRunner's `trt_module`, `cudart`, `device`, `cuda_graph`
            (edge-engine check passes the TensorRT it has just built the engines with).

    Raises:
        EdgeBuildError: an unknown backend.
    """
    cls = runner_class(backend)
    if trt_options and backend != "trt":
        raise EdgeBuildError(f"{sorted(trt_options)} apply to the trt backend, not {backend!r}")
    if backend == "ort":
        return cls(bundle.onnx_path(precision), providers=providers, threads=threads)
    if backend == "torch":
        from edge.runtime.torch_runner import bundle_model

        return cls(lambda: bundle_model(bundle, checkpoint), bundle.spec)
    return cls(bundle.root, precision=precision, **trt_options)
