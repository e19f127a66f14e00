"""A tiny bundle with real FP32, FP16 and INT8 ONNX models, built in well under a second.

The model reads the same `(onset, apex)` interface as MMNet at 32x32: average-pooled motion
(`apex - onset`) and appearance features, a ReLU hidden layer and 5 logits. The FP16 model
computes the layers in float16 with FP32 I/O; the INT8 model stores its weights as symmetric
per-tensor int8 behind DequantizeLinear (zero point 0, as TensorRT requires), on a
deliberately coarse 15-level grid so the loss is visible. So the three
precisions really differ numerically, as quantized MMNet models will.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from edge.bundle import write_manifest
from edge.spec import ModelSpec, Preprocessing, TensorSpec

SIZE = 32
CLASSES = ("happiness", "repression", "disgust", "surprise", "others")


def tiny_spec() -> ModelSpec:
    image = ("batch", 3, SIZE, SIZE)
    return ModelSpec(
        arch="tiny",
        variant="test-5",
        inputs=(TensorSpec("onset", image), TensorSpec("apex", image)),
        outputs=(TensorSpec("logits", ("batch", len(CLASSES))),),
        preprocessing=Preprocessing(size=(SIZE, SIZE)),
        class_names=CLASSES,
    )


def _weights(seed: int = 0) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w1": (rng.standard_normal((96, 16)) * 0.5).astype(np.float32),
        "b1": (rng.standard_normal(16) * 0.1).astype(np.float32),
        "w2": (rng.standard_normal((16, len(CLASSES))) * 0.5).astype(np.float32),
        "b2": (rng.standard_normal(len(CLASSES)) * 0.1).astype(np.float32),
    }


def features(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    """numpy twin of the graph's feature part: 8x8 average pools of motion and apex."""

    def pool(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        return x.reshape(n, 3, 4, 8, 4, 8).mean(axis=(3, 5)).reshape(n, -1)

    return np.concatenate([pool(apex - onset), pool(apex)], axis=1)


def reference_logits(onset: np.ndarray, apex: np.ndarray, seed: int = 0) -> np.ndarray:
    w = _weights(seed)
    f = features(onset.astype(np.float64), apex.astype(np.float64))
    h = np.maximum(f @ w["w1"] + w["b1"], 0)
    return (h @ w["w2"] + w["b2"]).astype(np.float32)


def _model(precision: str, seed: int = 0):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = _weights(seed)
    nodes = [
        helper.make_node("Sub", ["apex", "onset"], ["motion"]),
        helper.make_node("AveragePool", ["motion"], ["pm"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("AveragePool", ["apex"], ["pa"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["pm"], ["fm"]),
        helper.make_node("Flatten", ["pa"], ["fa"]),
        helper.make_node("Concat", ["fm", "fa"], ["feat"], axis=1),
    ]
    inits = []
    if precision == "fp16":
        nodes.append(helper.make_node("Cast", ["feat"], ["x"], to=TensorProto.FLOAT16))
        for k, v in w.items():
            inits.append(numpy_helper.from_array(v.astype(np.float16), k))
        tail = [helper.make_node("Cast", ["y"], ["logits"], to=TensorProto.FLOAT)]
        out = "y"
    else:
        nodes.append(helper.make_node("Identity", ["feat"], ["x"]))
        tail = []
        out = "logits"
        for k, v in w.items():
            if precision == "int8" and k.startswith("w"):
                scale = np.float32(np.abs(v).max() / 7.0)  # coarse on purpose: visible loss
                q = np.clip(np.round(v / scale), -7, 7).astype(np.int8)
                inits += [
                    numpy_helper.from_array(q, k + "_q"),
                    numpy_helper.from_array(np.array(scale, np.float32), k + "_s"),
                    numpy_helper.from_array(np.array(0, np.int8), k + "_z"),
                ]
                nodes.append(
                    helper.make_node("DequantizeLinear", [k + "_q", k + "_s", k + "_z"], [k])
                )
            else:
                inits.append(numpy_helper.from_array(v, k))
    nodes += [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["l0"]),
        helper.make_node("Add", ["l0", "b2"], [out]),
    ] + tail
    image = ["batch", 3, SIZE, SIZE]
    graph = helper.make_graph(
        nodes,
        f"tiny_{precision}",
        [
            helper.make_tensor_value_info("onset", TensorProto.FLOAT, image),
            helper.make_tensor_value_info("apex", TensorProto.FLOAT, image),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(CLASSES)])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def frames(n: int, seed: int) -> np.ndarray:
    """Smooth random uint8 onset/apex pairs [n, 2, SIZE, SIZE, 3] with small apex motion."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 215, size=(n, 1, SIZE // 4, SIZE // 4, 3))
    base = np.repeat(np.repeat(base, 4, axis=2), 4, axis=3)
    motion = rng.integers(-25, 26, size=(n, 1, SIZE, SIZE, 3))
    pair = np.concatenate([base, np.clip(base + motion, 0, 255)], axis=1)
    return pair.astype(np.uint8)


def make_tiny_bundle(
    root: Path,
    *,
    precisions=("fp32", "fp16", "int8"),
    labelled_validation: Optional[int] = 40,
    fixed_batch: bool = False,
    extra_model_fields: Optional[Dict[str, Dict]] = None,
) -> Path:
    """Write a complete, hash-verified bundle with the given precisions into `root`."""
    import onnx

    from edge.preprocess import normalize_frame

    spec = tiny_spec()
    root.mkdir(parents=True, exist_ok=True)
    models = {}
    for p in precisions:
        model = _model(p)
        if fixed_batch:
            for value in list(model.graph.input) + list(model.graph.output):
                value.type.tensor_type.shape.dim[0].dim_value = 1
        name = f"model.{p}.onnx"
        onnx.save(model, str(root / name))
        models[p] = {"file": name, "precision": p}
        models[p].update((extra_model_fields or {}).get(p, {}))

    def normalized(pairs: np.ndarray):
        onset = np.stack([normalize_frame(f, spec.preprocessing) for f in pairs[:, 0]])
        apex = np.stack([normalize_frame(f, spec.preprocessing) for f in pairs[:, 1]])
        return onset, apex

    ref = frames(4, seed=1)
    np.savez(
        root / "reference.npz",
        names=np.array([f"ref-{i}" for i in range(4)]),
        frames=ref,
        reference_logits=reference_logits(*normalized(ref)),
    )
    manifest = {
        "model": {"arch": "tiny", "variant": "test-5", "trained": False, "spec": spec.to_dict()},
        "target": {"tensorrt": "10", "opset": 17, "jetpack": "6.1-7.2"},
        "models": models,
        "parity": {"tolerance": 1e-4},
        "reference": {"file": "reference.npz"},
        "quantization": None,
        "engines": [],
    }
    if labelled_validation:
        val = frames(labelled_validation, seed=2)
        truth = reference_logits(*normalized(val)).argmax(axis=1)
        labels = truth.copy()
        labels[::4] = (labels[::4] + 1) % len(CLASSES)  # a model that is 75% right
        np.savez(root / "validation.npz", frames=val, labels=labels.astype(np.int64))
        manifest["validation"] = {"file": "validation.npz", "samples": int(len(val))}
    write_manifest(root, manifest)
    json.loads((root / "manifest.json").read_text())
    return root
