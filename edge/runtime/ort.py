"""ONNX Runtime backend: the host's executor for FP32/FP16/INT8 ONNX models (CPU by default)."""

from __future__ import annotations

import os
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from edge._lazy import require
from edge.runtime.base import Runner
from edge.runtime.ort_lowering import LOWERING_NOTE
from edge.spec import TensorSpec

__all__ = ["OrtRunner", "select_providers"]

#: Providers tried by `providers="auto"`, best first; CPU is always the last resort.
AUTO_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}

ModelSource = Union[str, "os.PathLike[str]", bytes, Callable[[], Union[str, bytes]]]


def select_providers(available: Sequence[str]) -> List[str]:
    """CUDA when this onnxruntime build has it (onnxruntime-gpu, Jetson wheels), then CPU."""
    chosen = [p for p in AUTO_PROVIDERS if p in available]
    return chosen or ["CPUExecutionProvider"]


class OrtRunner(Runner):
    """Runs an ONNX model (path, bytes, or a callable returning either) with ONNX Runtime.

    `providers`: None for the CPU (the default, reproducible everywhere), `"auto"` for CUDA
    where this onnxruntime build offers it, or an explicit list.
    `lower_qdq`: run an in-memory copy with ReLU int8 Q/DQ retyped so the CPU kernels fuse it
    (`edge.runtime.ort_lowering`); None (default) does so when only the CPU provider runs and
    the model has int8 Q/DQ. The executor's name says when it happened.
    `spin`: let idle intra-op threads busy-wait for work (ONNX Runtime's default). Off by
    default: this host is shared, and a process often holds several sessions (interleaved
    benchmarks); a spinning thread then takes the core another thread needs. Measured on the
    2-core host under other engineers' load (MMNet, 2 threads): FP32 544 -> 384 ms and INT8
    213 -> 93 ms p50 with spinning off; the numbers computed are the same either way.
    """

    name = "onnxruntime"

    def __init__(
        self,
        model: ModelSource,
        *,
        providers: Union[None, str, Sequence[str]] = None,
        threads: Optional[int] = None,
        optimize: bool = True,
        lower_qdq: Optional[bool] = None,
        spin: bool = False,
    ) -> None:
        super().__init__()
        self._model = model
        if providers == "auto":
            self._providers: Optional[List[str]] = None
        elif isinstance(providers, str):
            self._providers = [providers]
        else:
            self._providers = list(providers) if providers else ["CPUExecutionProvider"]
        self._threads = threads
        self._optimize = optimize
        self._lower_qdq = lower_qdq
        self._spin = spin
        self._lowered = 0
        self._session = None

    @property
    def executor(self) -> str:
        """A human-readable name of what actually executes the model."""
        ort = require("onnxruntime", purpose="running ONNX models")
        if self._session is not None:
            providers = list(self._session.get_providers())
        else:
            providers = self._providers or select_providers(ort.get_available_providers())
        name = "onnxruntime {} ({})".format(ort.__version__, ", ".join(providers))
        if self._lowered:
            name += f"; {LOWERING_NOTE} ({self._lowered} rewrites)"
        return name

    def _activate(self) -> None:
        ort = require("onnxruntime", purpose="running ONNX models")
        source = self._model() if callable(self._model) else self._model
        if not isinstance(source, bytes):
            source = os.fspath(source)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        for pool in ("intra_op", "inter_op"):
            options.add_session_config_entry(f"session.{pool}.allow_spinning", str(int(self._spin)))
        if self._threads:
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
        if not self._optimize:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        providers = self._providers or select_providers(ort.get_available_providers())
        lower = self._lower_qdq
        if lower is None:
            lower = self._optimize and list(providers) == ["CPUExecutionProvider"]
        self._lowered = 0
        if lower:
            source = self._lowered_source(source)
        self._session = ort.InferenceSession(source, options, providers=providers)

    def _lowered_source(self, source: Union[str, bytes]) -> Union[str, bytes]:
        """`source` as lowered bytes when it holds int8 Q/DQ to lower, else unchanged."""
        try:
            onnx = require("onnx", purpose="lowering INT8 Q/DQ for ONNX Runtime CPU")
        except ImportError:
            return source
        from edge.runtime.ort_lowering import lower_for_cpu

        if isinstance(source, bytes):
            if b"QuantizeLinear" not in source:
                return source
            model = onnx.load_from_string(source)
        else:
            model = onnx.load(source, load_external_data=False)
            if not any(n.op_type == "QuantizeLinear" for n in model.graph.node):
                return source
            if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
                return source  # > 2 GB models keep their external data; not lowered
        self._lowered = lower_for_cpu(model)
        return model.SerializeToString() if self._lowered else source

    def _deactivate(self) -> None:
        self._session = None

    @staticmethod
    def _spec(arg) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) else str(d) for d in arg.shape)
        return TensorSpec(arg.name, shape, _ORT_TYPES.get(arg.type, arg.type))

    def _inputs(self) -> Dict[str, TensorSpec]:
        return {a.name: self._spec(a) for a in self._session.get_inputs()}

    def _outputs(self) -> Dict[str, TensorSpec]:
        return {a.name: self._spec(a) for a in self._session.get_outputs()}

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        names = [a.name for a in self._session.get_outputs()]
        inputs = {k: np.asarray(v) for k, v in feeds.items()}
        start = time.perf_counter_ns()
        values = self._session.run(names, inputs)
        # ONNX Runtime copies inside `run`, so only the whole call can be timed: compute.
        self.last_stages_ms = {"compute": (time.perf_counter_ns() - start) / 1e6}
        return dict(zip(names, values))
