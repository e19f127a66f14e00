"""AFNet-M and FAMNet export: ONNX Runtime matches PyTorch at opset 16 and 17, the graphs lint
clean for every TensorRT target, batch can be dynamic, and the INT8 precision hints name nodes."""

from __future__ import annotations

import numpy as np
import pytest

from edge.face_regions import region_mask
from edge.models.afnet_m_spec import AFNetMConfig
from edge.models.famnet_spec import FAMNetConfig
from edge.targets import TARGETS

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edge.export import onnx_from_model, op_histogram  # noqa: E402
from edge.lint import errors, lint_onnx  # noqa: E402
from edge.models import afnet_m_arch, famnet_arch  # noqa: E402
from edge.runtime.ort import OrtRunner  # noqa: E402
from edge.runtime.torch_runner import TorchRunner  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.ort]

SMALL_AFNET = dict(size=32, stem_width=8, widths=(8, 16, 16, 32), reduction=2)
MODELS = {
    "afnet_m-constant": lambda: afnet_m_arch.build_seeded(2, AFNetMConfig(**SMALL_AFNET)),
    "afnet_m-input": lambda: afnet_m_arch.build_seeded(
        2, AFNetMConfig(**SMALL_AFNET, mask_mode="input")
    ),
    "famnet": lambda: famnet_arch.build_seeded(
        2, FAMNetConfig(base_width=8, size=32, clip_length=4, reduction=2)
    ),
}


def _perturb_bn(model):
    """Trained-like BN statistics and fusion weights, so parity is not checked on a trivial net."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_mean") or name.endswith("_weights"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) - 0.5)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
    return model


def feeds(spec, batch=1, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for t in spec.inputs:
        shape = (batch,) + tuple(t.shape[1:])
        if t.name == "mask":
            side = shape[-2:]
            out[t.name] = np.broadcast_to(region_mask(side), shape).astype(np.float32)
        else:
            out[t.name] = rng.standard_normal(shape).astype(np.float32)
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (loaded, {opset: path})."""
    out = {}
    root = tmp_path_factory.mktemp("onnx")
    for name, make in MODELS.items():
        loaded = make()
        _perturb_bn(loaded.model)
        paths = {}
        for opset in (16, 17):
            paths[opset] = root / f"{name}-{opset}.onnx"
            result = onnx_from_model(loaded.model, loaded.spec, paths[opset], opset=opset)
            assert result.opset == opset
        out[name] = (loaded, paths)
    return out


@pytest.mark.parametrize("opset", [16, 17])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnxruntime_matches_pytorch(exported, name, opset):
    loaded, paths = exported[name]
    samples = [feeds(loaded.spec, seed=s) for s in range(3)]
    with TorchRunner(loaded.model, loaded.spec) as ref, OrtRunner(paths[opset]) as ort:
        assert list(ort.inputs) == list(loaded.spec.input_names())
        assert list(ort.outputs) == list(loaded.spec.output_names())
        for sample in samples:
            a, b = ref.infer(sample), ort.infer(sample)
            for out in loaded.spec.outputs:
                key = out.name
                assert a[key].shape == b[key].shape == out.shape
                assert np.abs(a[key]).max() > 1e-3  # not a degenerate output
                np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-4)


@pytest.mark.parametrize("trt", sorted(TARGETS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_lint_clean_for_every_tensorrt_target(exported, name, trt):
    _, paths = exported[name]
    findings = lint_onnx(paths[TARGETS[trt].opset], trt)
    assert errors(findings) == [], [f.to_dict() for f in findings]


def test_graphs_use_only_plain_ops(exported):
    famnet_ops = op_histogram(onnx.load(str(exported["famnet"][1][17])))
    # 3D convolutions and pooling are plain Conv/MaxPool on 5D tensors; pooling is global
    assert {"Conv", "MaxPool", "ReduceMean", "ReduceMax", "Sigmoid", "Gemm"} <= set(famnet_ops)
    afnet_ops = op_histogram(onnx.load(str(exported["afnet_m-input"][1][17])))
    assert {"AveragePool", "Softmax", "Tanh"} <= set(afnet_ops)
    constant_ops = op_histogram(onnx.load(str(exported["afnet_m-constant"][1][17])))
    assert "AveragePool" not in constant_ops  # the constant mask is folded at export
    for ops in (famnet_ops, afnet_ops, constant_ops):
        assert not {"Resize", "Loop", "If", "GlobalAveragePool"} & set(ops)


@pytest.mark.parametrize("name", ["afnet_m-input", "famnet"])
def test_dynamic_batch(exported, name, tmp_path):
    loaded, _ = exported[name]
    spec = loaded.spec.with_batch("batch")
    path = tmp_path / "dyn.onnx"
    onnx_from_model(loaded.model, spec, path, opset=17, dynamic_batch=True)
    sample = feeds(spec, batch=3)
    with OrtRunner(path) as ort, TorchRunner(loaded.model, spec) as ref:
        assert all(t.shape[0] == "batch" for t in ort.inputs.values())
        got, want = ort.infer(sample), ref.infer(sample)
    for key in spec.output_names():
        assert got[key].shape[0] == 3
        np.testing.assert_allclose(got[key], want[key], rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_precision_hints_name_nodes_of_the_graph(exported, name):
    from quantize.int8 import resolve_nodes

    loaded, paths = exported[name]
    model = onnx.load(str(paths[17]))
    chosen = resolve_nodes(
        model, loaded.spec.precision_hints
    )  # raises on a hint that matches nothing
    ops = {n.op_type for n in model.graph.node if n.name in chosen}
    assert "Sigmoid" in ops or "Softmax" in ops  # the attention / fusion gates
    assert "Gemm" in ops  # the heads


def test_metadata_names_the_architecture(exported):
    model = onnx.load(str(exported["famnet"][1][17]))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["mer_edge.arch"] == "famnet"
    assert meta["mer_edge.inputs"] == "apex,clip"
