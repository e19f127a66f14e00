"""A fake TensorRT whose "engine" runs the bundle's ONNX with ONNX Runtime.

TensorRT cannot run here; this lets `edge-engine check` go through its whole real path (engine
build recorded in the bundle, TrtRunner's name-based I/O over host-memory "device" buffers,
parity, accuracy, latency, report) with outputs that are the model's real outputs. Names come
from the release's real name table (`make_fake`), so a name the release lacks still fails. The
plan bytes name the ONNX they were built from; a model whose file holds `broken_marker` fails
to parse, as TensorRT's parser would reject it.
"""

from __future__ import annotations

import ctypes
import hashlib
from typing import Dict, Tuple

import numpy as np

from edge.bundle import Bundle
from tests.trt.fake_tensorrt import FakeTensorRT, Method, make_fake

__all__ = ["ort_tensorrt"]


def _view(address: int, shape: Tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape))
    return np.frombuffer((ctypes.c_float * count).from_address(address), np.float32).reshape(shape)


def ort_tensorrt(bundle: Bundle, release: str = "10.3", broken_marker: bytes = b"") -> FakeTensorRT:
    import onnxruntime as ort

    spec = bundle.spec
    shapes: Dict[str, Tuple[int, ...]] = {}
    for tensor in list(spec.inputs) + list(spec.outputs):
        shapes[tensor.name] = tuple(1 if not isinstance(d, int) else d for d in tensor.shape)
    inputs = [t.name for t in spec.inputs]
    names = inputs + [t.name for t in spec.outputs]
    plans: Dict[bytes, bytes] = {}  # plan bytes -> ONNX bytes
    sessions: Dict[bytes, object] = {}
    state: Dict[str, object] = {"onnx": b"", "engine": b""}
    addresses: Dict[str, int] = {}
    fake = make_fake(release)

    def parse(data: bytes) -> bool:
        state["onnx"] = bytes(data)
        return not (broken_marker and broken_marker in data)

    def build(network, config) -> bytes:
        onnx = state["onnx"]
        plan = b"PLAN:" + hashlib.sha256(onnx).hexdigest().encode()
        plans[plan] = onnx
        return plan

    def deserialize(data: bytes):
        if data not in plans:
            return None
        state["engine"] = data
        return fake.ICudaEngine

    def execute(stream) -> bool:
        plan = state["engine"]
        if plan not in sessions:
            sessions[plan] = ort.InferenceSession(plans[plan], providers=["CPUExecutionProvider"])
        feeds = {n: _view(addresses[n], shapes[n]).copy() for n in inputs}
        outputs = sessions[plan].run(None, feeds)
        for tensor, value in zip(spec.outputs, outputs):
            _view(addresses[tensor.name], shapes[tensor.name])[...] = value
        return True

    fake.behaviour.update(
        {
            "parse": Method(parse),
            "num_errors": 1,  # read only after a failed parse
            "get_error": Method(lambda i: "unsupported operator in the ONNX"),
            "build_serialized_network": Method(build),
            "create_timing_cache": Method(lambda data: "cache"),
            "set_timing_cache": Method(lambda cache, ignore: True),
            "serialize": Method(lambda: b"TIMING-CACHE"),
            "deserialize_cuda_engine": Method(deserialize),
            "num_io_tensors": len(names),
            "get_tensor_name": Method(lambda i: names[i]),
            "get_tensor_mode": Method(
                lambda n: fake.TensorIOMode.INPUT if n in inputs else fake.TensorIOMode.OUTPUT
            ),
            "get_tensor_shape": Method(lambda n: shapes[n]),
            "get_tensor_dtype": Method(lambda n: fake.DataType.FLOAT),
            "nptype": Method(lambda dtype: np.float32),
            "set_tensor_address": Method(lambda n, ptr: addresses.__setitem__(n, ptr) or True),
            "execute_async_v3": Method(execute),
        }
    )
    return fake
