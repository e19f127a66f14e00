"""TensorRT backend: name-based I/O, page-locked host buffers, one stream, async copies.

The loop "allocate per `num_io_tensors`, `set_tensor_address`, `execute_async_v3(stream)`" works
unchanged on TensorRT 8.5, 10.x and 11.x. Before deserializing a bundle's engine the runner
checks the engine key in the manifest against this device and TensorRT, and refuses a mismatch
with `IncompatibleEngineError` naming both sides and the rebuild command. CUDA comes from
cuda-python (`cuda.bindings.runtime`, or `cuda.cudart` on older releases), never pycuda.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from edge._lazy import require
from edge._trtcompat import caps_from_module
from edge.bundle import Bundle
from edge.engine.build import engine_for_device
from edge.engine.device import DeviceInfo, cuda_check, load_cudart, probe_device
from edge.errors import EdgeBuildError, IncompatibleEngineError
from edge.runtime.base import Runner
from edge.spec import TensorSpec

__all__ = ["TrtRunner"]

log = logging.getLogger(__name__)

EngineSource = Union[str, "os.PathLike[str]", bytes, Callable[[], bytes]]


class _Buffer:
    """One I/O tensor: page-locked host memory, device memory, and their shapes."""

    def __init__(self, name: str, is_input: bool, dtype: np.dtype, shape: Tuple[int, ...]):
        self.name = name
        self.is_input = is_input
        self.dtype = dtype
        self.max_shape = shape
        self.nbytes = int(np.prod(shape)) * dtype.itemsize
        self.host_ptr = 0
        self.device_ptr = 0
        self.host: Optional[np.ndarray] = None
        self.dynamic = False


class TrtRunner(Runner):
    """Runs a serialized TensorRT engine.

    Args:
        source: a bundle directory (the engine for `precision` is chosen by its key), or
            engine bytes, a path to a plan file, or a callable returning bytes (no key check).
        precision: which of the bundle's engines to run.
        cuda_graph: capture the enqueue in a CUDA graph after the first run (fixed shapes only).
        trt_module, cudart, device: injected in tests; by default `tensorrt`,
            cuda-python's runtime and `probe_device()`.
    """

    name = "tensorrt"

    def __init__(
        self,
        source: EngineSource,
        *,
        precision: str = "fp32",
        cuda_graph: bool = False,
        trt_module: Any = None,
        cudart: Any = None,
        device: Optional[DeviceInfo] = None,
    ) -> None:
        super().__init__()
        self._source = source
        self._precision = precision
        self._cuda_graph = cuda_graph
        self._trt_module = trt_module
        self._cudart_module = cudart
        self._device = device
        self._origin: Optional[str] = None
        self._version: Optional[str] = None
        self._reset()

    @property
    def executor(self) -> str:
        """TensorRT's version and the engine that runs (known once activated)."""
        if self._version is None:
            return "TensorRT (engine not loaded yet)"
        return f"TensorRT {self._version} ({self._origin})"

    def _reset(self) -> None:
        self._trt: Any = None
        self._cudart: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._stream: Any = None
        self._events: List[Any] = []
        self._graph: Any = None
        self._graph_exec: Any = None
        self._runs = 0
        self._buffers: Dict[str, _Buffer] = {}
        self.engine_entry: Optional[Dict[str, Any]] = None

    # engine bytes -------------------------------------------------------------------------
    def _engine_bytes(self, trt: Any, cudart: Any) -> Tuple[bytes, str]:
        source = self._source
        if callable(source):
            return bytes(source()), "engine from callable"
        if isinstance(source, (bytes, bytearray)):
            return bytes(source), "engine bytes"
        path = Path(os.fspath(source))
        if not path.is_dir():
            return path.read_bytes(), str(path)
        bundle = Bundle.load(path)
        device = self._device if self._device is not None else probe_device(cudart=cudart)
        entry = engine_for_device(bundle, self._precision, trt=trt, device=device)
        self.engine_entry = entry
        return bundle.path(entry["file"]).read_bytes(), str(path / entry["file"])

    # lifecycle ----------------------------------------------------------------------------
    def _activate(self) -> None:
        trt = self._trt_module or require("tensorrt", purpose="running TensorRT engines")
        caps = caps_from_module(trt)
        if not caps.tensor_name_api:
            raise EdgeBuildError(
                f"TensorRT {caps.version_text} lacks name-based I/O (execute_async_v3); 8.5+ needed"
            )
        cudart = self._cudart_module or load_cudart()
        data, origin = self._engine_bytes(trt, cudart)
        self._trt, self._cudart = trt, cudart
        self._origin, self._version = origin, caps.version_text
        try:
            self._setup(trt, cudart, data, origin)
        except BaseException:
            self._release()
            raise

    def _setup(self, trt: Any, cudart: Any, data: bytes, origin: str) -> None:
        logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(logger)
        self._engine = self._runtime.deserialize_cuda_engine(data)
        if self._engine is None:
            raise IncompatibleEngineError(
                f"{origin}: TensorRT {trt.__version__} cannot deserialize this engine "
                "(built by another TensorRT version or for another GPU); rebuild it on this device"
            )
        self._context = self._engine.create_execution_context()
        self._stream = cuda_check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        # before h2d, compute start, compute end, after d2h: one infer's three stages
        self._events = [cuda_check(cudart.cudaEventCreate(), "cudaEventCreate") for _ in range(4)]
        dynamic = False
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            shape = declared = tuple(self._engine.get_tensor_shape(name))
            if is_input and any(d < 0 for d in shape):
                dynamic = True
                shape = tuple(self._engine.get_tensor_profile_shape(name, 0)[2])
                self._context.set_input_shape(name, shape)
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
            self._buffers[name] = _Buffer(name, is_input, dtype, shape)
            self._buffers[name].dynamic = is_input and shape != declared
        for buffer in self._buffers.values():
            if not buffer.is_input:
                buffer.max_shape = tuple(self._context.get_tensor_shape(buffer.name))
                buffer.nbytes = int(np.prod(buffer.max_shape)) * buffer.dtype.itemsize
            self._allocate(buffer)
            self._context.set_tensor_address(buffer.name, buffer.device_ptr)
        if self._cuda_graph and dynamic:
            raise EdgeBuildError(f"{origin}: CUDA graphs need fixed shapes; this engine is dynamic")

    def _allocate(self, buffer: _Buffer) -> None:
        cudart = self._cudart
        size = max(buffer.nbytes, 1)
        buffer.host_ptr = int(cuda_check(cudart.cudaMallocHost(size), "cudaMallocHost"))
        buffer.device_ptr = int(cuda_check(cudart.cudaMalloc(size), "cudaMalloc"))
        raw = (ctypes.c_uint8 * size).from_address(buffer.host_ptr)
        buffer.host = np.frombuffer(raw, dtype=np.uint8)

    def _release(self) -> None:
        cudart = self._cudart
        if cudart is not None:
            for buffer in self._buffers.values():
                if buffer.host_ptr:
                    cuda_check(cudart.cudaFreeHost(buffer.host_ptr), "cudaFreeHost")
                if buffer.device_ptr:
                    cuda_check(cudart.cudaFree(buffer.device_ptr), "cudaFree")
            if self._graph_exec is not None:
                cuda_check(cudart.cudaGraphExecDestroy(self._graph_exec), "cudaGraphExecDestroy")
            if self._graph is not None:
                cuda_check(cudart.cudaGraphDestroy(self._graph), "cudaGraphDestroy")
            for event in self._events:
                cuda_check(cudart.cudaEventDestroy(event), "cudaEventDestroy")
            if self._stream is not None:
                cuda_check(cudart.cudaStreamDestroy(self._stream), "cudaStreamDestroy")
        entry = self.engine_entry
        self._reset()
        self.engine_entry = entry

    def _deactivate(self) -> None:
        self._release()

    # introspection ------------------------------------------------------------------------
    def _specs(self, inputs: bool) -> Dict[str, TensorSpec]:
        out = {}
        for name, buffer in self._buffers.items():
            if buffer.is_input == inputs:
                declared = tuple(self._engine.get_tensor_shape(name))
                shape = tuple(d if d >= 0 else "dynamic" for d in declared)
                out[name] = TensorSpec(name, shape, str(buffer.dtype))
        return out

    def _inputs(self) -> Dict[str, TensorSpec]:
        return self._specs(True)

    def _outputs(self) -> Dict[str, TensorSpec]:
        return self._specs(False)

    # inference ----------------------------------------------------------------------------
    def _enqueue(self) -> None:
        cudart, stream = self._cudart, self._stream
        if self._graph_exec is not None:
            cuda_check(cudart.cudaGraphLaunch(self._graph_exec, stream), "cudaGraphLaunch")
            return
        if self._cuda_graph and self._runs >= 1:
            mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
            cuda_check(cudart.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")
            ok = self._context.execute_async_v3(stream)
            self._graph = cuda_check(cudart.cudaStreamEndCapture(stream), "cudaStreamEndCapture")
            if not ok:
                raise EdgeBuildError("TensorRT execute_async_v3 failed during CUDA graph capture")
            self._graph_exec = cuda_check(
                cudart.cudaGraphInstantiate(self._graph, 0), "cudaGraphInstantiate"
            )
            cuda_check(cudart.cudaGraphLaunch(self._graph_exec, stream), "cudaGraphLaunch")
            return
        if not self._context.execute_async_v3(stream):
            raise EdgeBuildError("TensorRT execute_async_v3 failed (see the TensorRT log)")

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        cudart, stream = self._cudart, self._stream
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        copied, computing, computed, done = self._events
        cuda_check(cudart.cudaEventRecord(copied, stream), "cudaEventRecord")
        for name, buffer in self._buffers.items():
            if not buffer.is_input:
                continue
            array = np.ascontiguousarray(feeds[name], dtype=buffer.dtype)
            if array.nbytes > buffer.nbytes:
                raise EdgeBuildError(
                    f"input {name!r} shape {list(array.shape)} exceeds the engine's maximum {list(buffer.max_shape)}"
                )
            if buffer.dynamic:
                self._context.set_input_shape(name, array.shape)
            buffer.host[: array.nbytes] = array.reshape(-1).view(np.uint8)
            cuda_check(
                cudart.cudaMemcpyAsync(
                    buffer.device_ptr, buffer.host_ptr, array.nbytes, h2d, stream
                ),
                "cudaMemcpyAsync",
            )
        cuda_check(cudart.cudaEventRecord(computing, stream), "cudaEventRecord")
        self._enqueue()
        cuda_check(cudart.cudaEventRecord(computed, stream), "cudaEventRecord")
        shapes = {}
        for name, buffer in self._buffers.items():
            if buffer.is_input:
                continue
            shape = tuple(self._context.get_tensor_shape(name))
            shapes[name] = shape
            nbytes = int(np.prod(shape)) * buffer.dtype.itemsize
            cuda_check(
                cudart.cudaMemcpyAsync(buffer.host_ptr, buffer.device_ptr, nbytes, d2h, stream),
                "cudaMemcpyAsync",
            )
        cuda_check(cudart.cudaEventRecord(done, stream), "cudaEventRecord")
        cuda_check(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        stages = {}
        for stage, (start, end) in zip(
            ("h2d", "compute", "d2h"),
            ((copied, computing), (computing, computed), (computed, done)),
        ):
            elapsed = cuda_check(cudart.cudaEventElapsedTime(start, end), "cudaEventElapsedTime")
            stages[stage] = float(elapsed)
        self.last_stages_ms = stages
        self.last_gpu_ms = stages["compute"]
        self._runs += 1
        outputs = {}
        for name, shape in shapes.items():
            buffer = self._buffers[name]
            count = int(np.prod(shape)) * buffer.dtype.itemsize
            outputs[name] = buffer.host[:count].view(buffer.dtype).reshape(shape).copy()
        return outputs
