"""The Runner contract shared by ONNX Runtime, PyTorch and TensorRT backends.

Public methods validate and keep state; subclasses implement `_activate`, `_infer` and
`_deactivate`. Construction is cheap: heavy resources are created in `_activate`, so runners can
be made in one process and used in another.

After every `infer` a runner states what it measured, so reports never have to guess:
`last_latency_ms` (host clock around the whole call), `last_stages_ms` (stage name -> ms, from
`STAGES`, for the stages this backend can separate; None when it cannot) and `last_gpu_ms`
(GPU compute timed by CUDA events; None on CPU executors).
"""

from __future__ import annotations

import time
from typing import Dict, Mapping, Optional

import numpy as np

from edge.errors import EdgeBuildError
from edge.spec import TensorSpec

__all__ = ["Runner", "RunnerError", "STAGES"]

#: Stages a runner can report in `last_stages_ms`: host->device copies, compute, device->host.
STAGES = ("h2d", "compute", "d2h")


class RunnerError(EdgeBuildError):
    """A runner was misused (not active) or fed inputs that do not match its spec."""


class Runner:
    """`with runner as r: r.infer({"onset": x, "apex": y}) -> {"logits": ...}`."""

    name = "runner"

    def __init__(self) -> None:
        self._active = False
        self.last_latency_ms: Optional[float] = None
        self.last_stages_ms: Optional[Dict[str, float]] = None
        self.last_gpu_ms: Optional[float] = None

    @property
    def executor(self) -> str:
        """What actually executes the model (library, version, device), for every report."""
        return self.name

    # lifecycle -----------------------------------------------------------------------------
    def activate(self) -> Runner:
        if self._active:
            raise RunnerError(f"{self.name} is already active")
        self._activate()
        self._active = True
        return self

    def deactivate(self) -> None:
        if self._active:
            self._active = False
            self._deactivate()

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    @property
    def is_active(self) -> bool:
        return self._active

    # introspection ---------------------------------------------------------------------------
    @property
    def inputs(self) -> Dict[str, TensorSpec]:
        self._require_active()
        return self._inputs()

    @property
    def outputs(self) -> Dict[str, TensorSpec]:
        self._require_active()
        return self._outputs()

    # inference -------------------------------------------------------------------------------
    def infer(
        self, feeds: Mapping[str, np.ndarray], *, check: bool = True
    ) -> Dict[str, np.ndarray]:
        self._require_active()
        if check:
            self._check_feeds(feeds)
        self.last_stages_ms = None
        self.last_gpu_ms = None
        start = time.perf_counter_ns()
        outputs = self._infer(feeds)
        self.last_latency_ms = (time.perf_counter_ns() - start) / 1e6
        return {name: np.array(value, copy=True) for name, value in outputs.items()}

    def _require_active(self) -> None:
        if not self._active:
            raise RunnerError(f"{self.name} is not active; use it inside a `with` block")

    def _check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        specs = self._inputs()
        missing = sorted(set(specs) - set(feeds))
        extra = sorted(set(feeds) - set(specs))
        if missing or extra:
            raise RunnerError(
                f"{self.name}: inputs {sorted(specs)} expected; missing {missing}, unexpected {extra}"
            )
        for name, spec in specs.items():
            array = np.asarray(feeds[name])
            if str(array.dtype) != spec.dtype:
                raise RunnerError(
                    f"{self.name}: input {name!r} has dtype {array.dtype}, expected {spec.dtype}"
                )
            if len(array.shape) != len(spec.shape) or any(
                isinstance(want, int) and want != got for want, got in zip(spec.shape, array.shape)
            ):
                raise RunnerError(
                    f"{self.name}: input {name!r} has shape {list(array.shape)}, expected {list(spec.shape)}"
                )

    # backend hooks ---------------------------------------------------------------------------
    def _activate(self) -> None:
        raise NotImplementedError

    def _deactivate(self) -> None:
        raise NotImplementedError

    def _inputs(self) -> Dict[str, TensorSpec]:
        raise NotImplementedError

    def _outputs(self) -> Dict[str, TensorSpec]:
        raise NotImplementedError

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        raise NotImplementedError
