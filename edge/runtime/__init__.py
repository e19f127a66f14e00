"""One Runner interface for every backend, and a registry that imports backends on demand."""

from __future__ import annotations

import importlib
from typing import Any

from edge.errors import EdgeBuildError
from edge.runtime.base import Runner

__all__ = ["Runner", "BACKENDS", "runner_class"]

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
