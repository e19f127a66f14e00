"""Tiny bring-your-own models written with onnx.helper (no torch needed) and their spec files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

CLASSES = ["happiness", "repression", "disgust", "surprise", "others"]


def tiny_onnx(
    path: Path,
    *,
    size: int = 32,
    classes: int = len(CLASSES),
    opset: int = 17,
    batch: Any = 1,
    names: Sequence[str] = ("onset", "apex"),
    output: str = "logits",
    seed: int = 0,
) -> Path:
    """apex - onset (or one flow input) -> Conv 3x3/2 -> Relu -> Conv 3x3/2 -> Relu -> GlobalAveragePool -> Gemm,
    random weights with a large first-layer gain, so 1-2 px of motion moves the logits."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def weight(name, *shape, gain=1.0):
        if len(shape) == 1:  # no biases: the logits follow the motion, not a constant
            return numpy_helper.from_array(np.zeros(shape, np.float32), name)
        fan_in = int(np.prod(shape[1:]))
        data = rng.normal(0, gain / np.sqrt(fan_in), size=shape).astype(np.float32)
        return numpy_helper.from_array(data, name)

    inits = [
        weight("w1", 8, 3, 3, 3, gain=30.0), weight("b1", 8), weight("w2", 16, 8, 3, 3), weight("b2", 16),
        weight("wf", classes, 16), weight("bf", classes),
    ]  # fmt: skip
    if len(names) == 2:  # onset, apex: the network sees their difference
        first = [helper.make_node("Sub", [names[1], names[0]], ["motion"], name="motion")]
    else:  # one input that is motion already (flow:image)
        first = [helper.make_node("Identity", [names[0]], ["motion"], name="motion")]
    nodes = first + [
        helper.make_node("Conv", ["motion", "w1", "b1"], ["c1"], name="conv1", pads=[1] * 4,
                         strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1] * 4,
                         strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flat"),
        helper.make_node("Gemm", ["flat", "wf", "bf"], [output], name="fc", transB=1),
    ]  # fmt: skip
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, 3, size, size]) for n in names
    ]
    outputs = [helper.make_tensor_value_info(output, TensorProto.FLOAT, [batch, classes])]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return Path(path)


def spec_dict(*, size: int = 32, classes: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    return {
        "model": "tiny-motion",
        "classes": list(classes or CLASSES),
        "label_scheme": "CASME II 5-class",
        "preprocessing": {"size": size, "color": "RGB", "scale": "1/255",
                          "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "inputs": [{"name": "onset", "source": "onset"}, {"name": "apex", "source": "apex"}],
        "outputs": {"logits": "logits"},
    }  # fmt: skip


def write_spec(path: Path, data: Dict[str, Any]) -> Path:
    path = Path(path)
    if path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2))
    else:
        import yaml

        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def flow_spec_dict(*, size: int = 28) -> Dict[str, Any]:
    """An STSTNet-style interface: u, v and strain at 28x28 as one 3-channel input."""
    data = spec_dict(size=size)
    data["model"] = "tiny-flow"
    data["inputs"] = [{"name": "flow", "source": "flow:image"}]
    data["flow"] = {"method": "farneback", "size": 112, "scale": 1.0, "clip": 4.0,
                    "strain_scale": 4.0, "strain_clip": 1.0}  # fmt: skip
    data["preprocessing"] = {"size": size}
    return data
