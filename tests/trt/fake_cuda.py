"""A fake cuda-python runtime (`cuda.bindings.runtime` names) backed by host memory.

A CUDA driver cannot exist here, so "device" memory is ordinary host memory and copies are
`ctypes.memmove`; the runner's buffer handling and byte movement are therefore real. Functions
return `(err, value)` tuples with err 0 (cudaSuccess), as cuda-python does.
"""

from __future__ import annotations

import ctypes
import types
from typing import Any, Dict, List, Tuple

__all__ = ["FakeCudart"]


class FakeCudart:
    cudaMemcpyKind = types.SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)
    cudaStreamCaptureMode = types.SimpleNamespace(cudaStreamCaptureModeGlobal=0)

    def __init__(self, *, device_count: int = 1, count_error: int = 0) -> None:
        self.device_count = device_count
        self.count_error = count_error  # e.g. 35, cudaErrorInsufficientDriver: no driver
        self.blocks: Dict[int, Any] = {}
        self.calls: List[Tuple[str, tuple]] = []
        self.freed: List[int] = []
        self._handles = 100

    def _log(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))

    def _alloc(self, name: str, size: int) -> Tuple[int, int]:
        block = ctypes.create_string_buffer(size)
        address = ctypes.addressof(block)
        self.blocks[address] = block
        self._log(name, size)
        return (0, address)

    def cudaGetDeviceCount(self) -> Tuple[int, int]:
        self._log("cudaGetDeviceCount")
        return (self.count_error, 0 if self.count_error else self.device_count)

    def cudaRuntimeGetVersion(self) -> Tuple[int, int]:
        return (0, 13000)

    def cudaGetDevice(self) -> Tuple[int, int]:
        return (0, 0)

    def cudaGetDeviceProperties(self, device: int) -> Tuple[int, Any]:
        return (0, types.SimpleNamespace(major=8, minor=7, name=b"Orin (fake)"))

    def cudaMallocHost(self, size: int) -> Tuple[int, int]:
        return self._alloc("cudaMallocHost", size)

    def cudaMalloc(self, size: int) -> Tuple[int, int]:
        return self._alloc("cudaMalloc", size)

    def cudaFreeHost(self, ptr: int) -> Tuple[int]:
        self.freed.append(ptr)
        return (0,)

    cudaFree = cudaFreeHost

    def _handle(self, name: str) -> Tuple[int, int]:
        self._handles += 1
        self._log(name)
        return (0, self._handles)

    def cudaStreamCreate(self) -> Tuple[int, int]:
        return self._handle("cudaStreamCreate")

    def cudaEventCreate(self) -> Tuple[int, int]:
        return self._handle("cudaEventCreate")

    def cudaMemcpyAsync(self, dst: int, src: int, size: int, kind: int, stream: int) -> Tuple[int]:
        self._log("cudaMemcpyAsync", kind, size)
        ctypes.memmove(dst, src, size)
        return (0,)

    def cudaEventRecord(self, event: int, stream: int) -> Tuple[int]:
        self._log("cudaEventRecord", event)
        return (0,)

    def cudaEventElapsedTime(self, start: int, end: int) -> Tuple[int, float]:
        return (0, 0.25)

    def cudaStreamSynchronize(self, stream: int) -> Tuple[int]:
        self._log("cudaStreamSynchronize")
        return (0,)

    def cudaStreamBeginCapture(self, stream: int, mode: int) -> Tuple[int]:
        self._log("cudaStreamBeginCapture")
        return (0,)

    def cudaStreamEndCapture(self, stream: int) -> Tuple[int, int]:
        return self._handle("cudaStreamEndCapture")

    def cudaGraphInstantiate(self, graph: int, flags: int) -> Tuple[int, int]:
        return self._handle("cudaGraphInstantiate")

    def cudaGraphLaunch(self, graph_exec: int, stream: int) -> Tuple[int]:
        self._log("cudaGraphLaunch")
        return (0,)

    def _destroy(self, *args: Any) -> Tuple[int]:
        return (0,)

    cudaGraphExecDestroy = cudaGraphDestroy = cudaEventDestroy = cudaStreamDestroy = _destroy
