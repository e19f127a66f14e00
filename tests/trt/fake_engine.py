"""A fake TensorRT engine whose work is a numpy function of its device buffers.

The fake `tensorrt` names come from the real bindings (`fake_tensorrt`); the "engine" reads its
inputs from the device memory the runner filled and writes its outputs there, so the runner's
buffer handling and byte movement are real. `compute` decides what the engine computes: a
hand-written function, or ONNX Runtime on the bundle's model, so a TensorRT run can be compared
with the ORT one.
"""

from __future__ import annotations

import ctypes
from typing import Callable, Dict, Mapping, Tuple

import numpy as np

from tests.trt.fake_tensorrt import Method, make_fake

__all__ = ["PLAN", "fake_engine", "ort_compute"]

#: What the fake builder serializes and the fake runtime accepts.
PLAN = b"PLAN-BYTES"

Shapes = Mapping[str, Tuple[int, ...]]


def _view(address: int, shape: Tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape))
    return np.frombuffer((ctypes.c_float * count).from_address(address), np.float32).reshape(shape)


def fake_engine(
    release: str,
    inputs: Shapes,
    outputs: Shapes,
    compute: Callable[[Dict[str, np.ndarray]], Dict[str, np.ndarray]],
):
    """A fake `tensorrt` whose one engine has float32 `inputs`/`outputs` and runs `compute`."""
    fake = make_fake(release)
    addresses: Dict[str, int] = {}
    shapes = dict(inputs, **outputs)
    names = list(inputs) + list(outputs)

    def execute(stream):
        feeds = {n: _view(addresses[n], inputs[n]).copy() for n in inputs}
        for name, value in compute(feeds).items():
            _view(addresses[name], outputs[name])[...] = value
        return True

    fake.behaviour.update(
        {
            "parse": Method(lambda data: True),
            "num_errors": 0,
            "build_serialized_network": Method(lambda network, config: PLAN),
            "set_timing_cache": Method(lambda cache, ignore: True),
            "serialize": Method(lambda: b"CACHE"),
            "deserialize_cuda_engine": Method(
                lambda data: fake.ICudaEngine if data == PLAN else None
            ),
            "num_io_tensors": len(names),
            "get_tensor_name": Method(lambda i: names[i]),
            "get_tensor_mode": Method(
                lambda n: fake.TensorIOMode.OUTPUT if n in outputs else fake.TensorIOMode.INPUT
            ),
            "get_tensor_shape": Method(lambda n: shapes[n]),
            "get_tensor_dtype": Method(lambda n: fake.DataType.FLOAT),
            "nptype": Method(lambda dtype: np.float32),
            "set_tensor_address": Method(lambda n, ptr: addresses.__setitem__(n, ptr) or True),
            "execute_async_v3": Method(execute),
        }
    )
    return fake


def ort_compute(
    onnx_path,
) -> Tuple[Dict[str, Tuple[int, ...]], Dict[str, Tuple[int, ...]], Callable]:
    """Input shapes, output shapes and a `compute` that runs `onnx_path` on ONNX Runtime (CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = {a.name: tuple(a.shape) for a in session.get_inputs()}
    outputs = {a.name: tuple(a.shape) for a in session.get_outputs()}

    def compute(feeds):
        return dict(zip(outputs, session.run(list(outputs), feeds)))

    return inputs, outputs, compute
