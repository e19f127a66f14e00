"""`plan_build`: the version policy, on capabilities read from each release's real names."""

from __future__ import annotations

import dataclasses

import pytest

from edge._trtcompat import TrtCaps, caps_from_module, parse_version
from edge.engine import plan_build
from edge.errors import EdgeBuildError
from tests.trt.fake_tensorrt import make_fake

RELEASES = ["8.5", "8.6", "10.3", "10.13", "10.16", "11.4"]
FLAG_RELEASES = ["8.5", "8.6", "10.3", "10.13", "10.16"]


def caps(release: str) -> TrtCaps:
    return caps_from_module(make_fake(release))


def test_caps_follow_the_real_tables():
    assert caps("8.5").version == (8, 5, 2, 2)
    assert [r for r in RELEASES if caps(r).precision_flags] == FLAG_RELEASES
    assert [r for r in RELEASES if caps(r).optimization_level] == RELEASES[1:]
    assert [r for r in RELEASES if caps(r).strongly_typed_flag] == RELEASES[2:]
    assert all(caps(r).tensor_name_api and caps(r).timing_cache and caps(r).dla for r in RELEASES)
    assert parse_version("10.3.0.26") == (10, 3, 0, 26)
    with pytest.raises(EdgeBuildError):
        parse_version("unknown")


@pytest.mark.parametrize("release", RELEASES)
def test_int8_is_explicit_quantization_everywhere(release):
    plan = plan_build(caps(release), "int8", models=["fp32", "int8"])
    assert plan.onnx_model == "int8"
    expected = ("INT8", "FP16") if release in FLAG_RELEASES else ()
    assert plan.builder_flags == expected
    with pytest.raises(EdgeBuildError, match="INT8 Q/DQ ONNX"):
        plan_build(caps(release), "int8", models=["fp32"])


@pytest.mark.parametrize("release", FLAG_RELEASES)
def test_fp16_by_flag_on_8_and_10(release):
    plan = plan_build(caps(release), "fp16", models=["fp32"])
    assert (plan.onnx_model, plan.builder_flags) == ("fp32", ("FP16",))


def test_fp16_from_the_fp16_onnx_on_11():
    c = caps("11.4")
    plan = plan_build(c, "fp16", models=["fp32", "fp16"])
    assert (plan.onnx_model, plan.builder_flags, plan.network_flags) == ("fp16", (), ())
    with pytest.raises(EdgeBuildError, match="not available on TensorRT 11.4.0.106"):
        plan_build(c, "fp16", models=["fp32"])


def test_network_flags():
    assert plan_build(caps("8.5"), "fp32").network_flags == ("EXPLICIT_BATCH",)
    assert plan_build(caps("10.3"), "fp32").network_flags == ()
    assert plan_build(caps("11.4"), "fp32").network_flags == ()


def test_workspace_and_optimization_level():
    plan = plan_build(caps("10.3"), "fp32", workspace_mib=512, optimization_level=5)
    assert plan.workspace_bytes == 512 << 20 and plan.optimization_level == 5
    with pytest.raises(EdgeBuildError, match="optimization level is not available on TensorRT 8.5"):
        plan_build(caps("8.5"), "fp32", optimization_level=3)
    with pytest.raises(EdgeBuildError, match="0-5"):
        plan_build(caps("10.3"), "fp32", optimization_level=7)
    with pytest.raises(EdgeBuildError, match="positive"):
        plan_build(caps("10.3"), "fp32", workspace_mib=0)
    no_pool = dataclasses.replace(caps("10.3"), memory_pool_limit=False)
    with pytest.raises(EdgeBuildError, match="set_memory_pool_limit is not available"):
        plan_build(no_pool, "fp32", workspace_mib=64)


def test_dla_with_gpu_fallback():
    plan = plan_build(caps("10.3"), "int8", models=["int8"], dla_core=1)
    assert plan.builder_flags == ("INT8", "FP16", "GPU_FALLBACK") and plan.check_dla_layers
    with pytest.raises(EdgeBuildError, match="FP16 and INT8 only"):
        plan_build(caps("10.3"), "fp32", dla_core=0)
    no_dla = dataclasses.replace(caps("10.3"), dla=False)
    with pytest.raises(EdgeBuildError, match="DLA is not available"):
        plan_build(no_dla, "fp16", dla_core=0)


def test_bundle_target_must_parse_on_this_version():
    with pytest.raises(EdgeBuildError, match="--target-trt 8.5"):
        plan_build(caps("8.5"), "fp32", "10")
    assert plan_build(caps("10.3"), "fp32", "8.5").onnx_model == "fp32"
    with pytest.raises(EdgeBuildError, match="unknown precision"):
        plan_build(caps("10.3"), "bf16")


def test_timing_cache_only_where_available():
    assert plan_build(caps("10.3"), "fp32").timing_cache
    assert not plan_build(caps("10.3"), "fp32", timing_cache=False).timing_cache
    assert not plan_build(
        dataclasses.replace(caps("10.3"), timing_cache=False), "fp32"
    ).timing_cache
