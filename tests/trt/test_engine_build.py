"""The builder adapter and `engine_from_bundle` against fakes of every release's real names."""

from __future__ import annotations

import pytest

from edge._trtcompat import caps_from_module
from edge.bundle import Bundle
from edge.engine import apply_plan, engine_from_bundle, plan_build
from edge.errors import EdgeBuildError
from tests.trt.conftest import ORIN, make_bundle, manifest
from tests.trt.fake_tensorrt import Method, make_fake

RELEASES = ["8.5", "8.6", "10.3", "10.13", "10.16", "11.4"]


class _Layer:
    def __init__(self, name):
        self.name = name


def behaviour(**extra):
    seen = {}

    def create_timing_cache(data):
        seen["cache_in"] = data
        return "cache"

    table = {
        "parse": Method(lambda data: data.startswith(b"onnx:")),
        "num_errors": 0,
        "build_serialized_network": Method(lambda network, config: b"PLAN-BYTES"),
        "create_timing_cache": Method(create_timing_cache),
        "set_timing_cache": Method(lambda cache, ignore: True),
        "serialize": Method(lambda: b"TIMING-CACHE"),
        "num_DLA_cores": 2,
        "num_layers": 3,
        "get_layer": Method(lambda i: _Layer(f"layer{i}")),
        "can_run_on_DLA": Method(lambda layer: layer.name != "layer1"),
    }
    table.update(extra)
    return table, seen


def bundle_for(release, tmp_path):
    models = {"fp32": "model.fp32.onnx", "int8": "model.int8.qdq.onnx"}
    return make_bundle(tmp_path / "bundle", models, "8.5" if release == "8.5" else "10")


def flags_set(fake):
    return [c.args[0]._path for c in fake.called("set_flag")]


@pytest.mark.parametrize("release", RELEASES)
def test_int8_engine_into_bundle(release, tmp_path):
    bundle = bundle_for(release, tmp_path)
    table, seen = behaviour()
    fake = make_fake(release, table)
    entry = engine_from_bundle(bundle.root, "int8", trt=fake, device=ORIN, workspace_mib=256)
    loaded = Bundle.load(bundle.root)  # every hash verifies after the update
    assert (bundle.root / entry["file"]).read_bytes() == b"PLAN-BYTES"
    assert loaded.manifest["engines"] == [
        {k: v for k, v in entry.items() if k not in ("sha256", "bytes")}
    ]
    assert entry["key"] == {
        "device_model": ORIN.model,
        "compute_capability": "8.7",
        "l4t": "36.4.0",
        "jetpack": "6.1+b123",
        "tensorrt": fake.__version__,
        "precision": "int8",
    }
    assert entry["onnx"]["file"] == "model.int8.qdq.onnx"
    assert entry["sha256"] == loaded.manifest["files"][entry["file"]]["sha256"]
    expected = [] if release == "11.4" else ["BuilderFlag.INT8", "BuilderFlag.FP16"]
    assert flags_set(fake) == expected
    assert fake.called("set_memory_pool_limit")[0].args[1] == 256 << 20
    assert (bundle.root / entry["timing_cache"]).read_bytes() == b"TIMING-CACHE"
    assert seen["cache_in"] == b""
    network_flags = fake.called("create_network")[0].args[0]
    assert (network_flags != 0) == (release in ("8.5", "8.6"))


@pytest.mark.parametrize("release", RELEASES)
def test_second_build_reuses_the_device_timing_cache(release, tmp_path):
    bundle = bundle_for(release, tmp_path)
    table, seen = behaviour()
    engine_from_bundle(bundle.root, "fp32", trt=make_fake(release, table), device=ORIN)
    engine_from_bundle(bundle.root, "int8", trt=make_fake(release, table), device=ORIN)
    assert seen["cache_in"] == b"TIMING-CACHE"
    assert [e["precision"] for e in manifest(bundle.root)["engines"]] == ["fp32", "int8"]
    # rebuilding the same key replaces its entry instead of adding one
    engine_from_bundle(bundle.root, "int8", trt=make_fake(release, table), device=ORIN)
    assert len(manifest(bundle.root)["engines"]) == 2


@pytest.mark.parametrize("release", ["10.3", "11.4"])
def test_dla_build_lists_gpu_fallback_layers(release, tmp_path):
    models = {"fp32": "model.fp32.onnx", "fp16": "model.fp16.onnx"}
    root = make_bundle(tmp_path / "b", models).root
    table, _ = behaviour()
    fake = make_fake(release, table)
    entry = engine_from_bundle(root, "fp16", trt=fake, device=ORIN, dla_core=1)
    assert entry["gpu_fallback_layers"] == ["layer1"]
    assert fake.called("DLA_core=")[0].args == (1,)
    assert "BuilderFlag.GPU_FALLBACK" in flags_set(fake)
    with pytest.raises(EdgeBuildError, match="DLA core 2 requested but this device has 2"):
        engine_from_bundle(root, "fp16", trt=make_fake(release, table), device=ORIN, dla_core=2)


def test_optimization_level_is_set_where_it_exists(bundle):
    table, _ = behaviour()
    fake = make_fake("10.16", table)
    engine_from_bundle(bundle.root, "fp32", trt=fake, device=ORIN, optimization_level=4)
    assert fake.called("builder_optimization_level=")[0].args == (4,)


def test_parser_errors_name_the_file(tmp_path):
    root = make_bundle(tmp_path / "b", {"fp32": "model.fp32.onnx"}).root
    (root / "model.fp32.onnx").write_bytes(b"broken")
    from edge.bundle import write_manifest

    write_manifest(root, {k: v for k, v in manifest(root).items() if k != "files"})
    table, _ = behaviour(num_errors=1, get_error=Method(lambda i: "unsupported op Foo"))
    with pytest.raises(
        EdgeBuildError, match="model.fp32.onnx: TensorRT's ONNX parser failed: unsupported op Foo"
    ):
        engine_from_bundle(root, "fp32", trt=make_fake("10.3", table), device=ORIN)
    assert manifest(root)["engines"] == []


def test_fp16_flag_call_fails_on_11():
    """A deliberately wrong plan (the FP16 flag) fails against 11.4, which lacks the name."""
    table, _ = behaviour()
    ten = plan_build(caps_from_module(make_fake("10.3")), "fp16")
    apply_plan(make_fake("10.3", table), ten, b"onnx:fp32")
    with pytest.raises(AttributeError, match="TensorRT 11.4.0.106 has no name 'FP16'"):
        apply_plan(make_fake("11.4", table), ten, b"onnx:fp32")


@pytest.mark.parametrize("release, fails", [("8.6", False), ("10.3", True), ("11.4", True)])
def test_removed_workspace_attribute_fails_where_removed(release, fails):
    config = make_fake(release).Builder(None).create_builder_config()
    if fails:
        with pytest.raises(AttributeError, match="max_workspace_size"):
            config.max_workspace_size = 1 << 30
    else:
        config.max_workspace_size = 1 << 30
