"""PyTorch reference backend: the model as trained, for parity checks and accuracy baselines."""

from __future__ import annotations

from typing import Callable, Dict, Mapping, Sequence, Union

import numpy as np

from edge._lazy import require
from edge.runtime.base import Runner
from edge.spec import ModelSpec, TensorSpec

__all__ = ["TorchRunner"]


class TorchRunner(Runner):
    """Runs an `nn.Module` whose forward takes the spec's inputs in order, on the CPU."""

    name = "torch"

    def __init__(self, model: Union[object, Callable[[], object]], spec: ModelSpec) -> None:
        super().__init__()
        self._model_source = model
        self._spec = spec
        self._model = None

    @property
    def executor(self) -> str:
        torch = require("torch", purpose="the PyTorch reference runner")
        return f"torch {torch.__version__} (CPU)"

    def _activate(self) -> None:
        torch = require("torch", purpose="the PyTorch reference runner")
        source = self._model_source
        model = source() if callable(source) and not isinstance(source, torch.nn.Module) else source
        self._model = model.eval()

    def _deactivate(self) -> None:
        self._model = None

    def _inputs(self) -> Dict[str, TensorSpec]:
        return {t.name: t for t in self._spec.inputs}

    def _outputs(self) -> Dict[str, TensorSpec]:
        return {t.name: t for t in self._spec.outputs}

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        torch = require("torch", purpose="the PyTorch reference runner")
        names: Sequence[str] = self._spec.input_names()
        with torch.inference_mode():
            args = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names]
            result = self._model(*args)
        if not isinstance(result, (tuple, list)):
            result = (result,)
        return {t.name: r.numpy() for t, r in zip(self._spec.outputs, result)}
