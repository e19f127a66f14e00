"""PyTorch reference backend: the model as trained, for parity checks and accuracy baselines."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from edge._lazy import require
from edge.errors import EdgeBuildError
from edge.runtime.base import Runner
from edge.spec import ModelSpec, TensorSpec

__all__ = ["TorchRunner", "bundle_model"]


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
            start = time.perf_counter_ns()
            result = self._model(*args)
            # CPU tensors share memory with numpy: no copies to time, only compute.
            self.last_stages_ms = {"compute": (time.perf_counter_ns() - start) / 1e6}
        if not isinstance(result, (tuple, list)):
            result = (result,)
        return {t.name: r.numpy() for t, r in zip(self._spec.outputs, result)}


def bundle_model(bundle: Any, checkpoint: Optional[str] = None) -> Any:
    """Rebuild the bundle's PyTorch model: the seeded demo, or the checkpoint it was built from."""
    from edge.models import architecture

    model_info = bundle.info.model
    if model_info.get("model_format") is not None:  # built with edge-build --model
        return _own_model(bundle, model_info, checkpoint)
    arch = architecture(model_info["arch"])
    if checkpoint:
        loaded = arch.load(checkpoint, class_names=model_info.get("class_names"))
        expected = model_info.get("checkpoint_sha256")
        found = loaded.info.get("checkpoint_sha256")
        if expected and found and expected != found:
            raise EdgeBuildError(
                f"{checkpoint}: sha256 {found} differs from the checkpoint this bundle was built from ({expected})"
            )
        return loaded.model
    if model_info.get("demo_card") is not None:  # built from the shipped demo model
        loaded = arch.build_demo()
        if loaded.info.get("checkpoint_sha256") != model_info.get("checkpoint_sha256"):
            raise EdgeBuildError(
                f"{bundle.root}: built from another demo model than the one installed; pass --checkpoint"
            )
        return loaded.model
    if model_info.get("checkpoint") is None and model_info.get("seed") is not None:
        return arch.build_seeded(seed=int(model_info["seed"])).model
    raise EdgeBuildError(
        f"{bundle.root}: the torch backend needs the checkpoint this bundle was built from ({model_info.get('checkpoint')}); pass --checkpoint"
    )


def _own_model(bundle: Any, model_info: Any, checkpoint: Optional[str]) -> Any:
    """A bring-your-own bundle's PyTorch model: its `.pt2` program, checked by sha256."""
    name = model_info.get("model_file")
    if model_info["model_format"] != "pt2":
        raise EdgeBuildError(
            f"{bundle.root}: built from the {model_info['model_format']} file {name}; there is "
            "no PyTorch model to run: use --backend ort (or trt on the device)"
        )
    if not checkpoint:
        raise EdgeBuildError(
            f"{bundle.root}: built from the torch.export program {name}; pass --checkpoint "
            f"{name} for the torch backend"
        )
    from edge.bundle import sha256_file
    from edge.models.exported import exported_module, load_exported_program

    found = sha256_file(checkpoint)
    if found != model_info.get("model_file_sha256"):
        raise EdgeBuildError(
            f"{checkpoint}: sha256 {found} differs from the program this bundle was built from "
            f"({name}, {model_info.get('model_file_sha256')})"
        )
    return exported_module(load_exported_program(checkpoint))
