"""The thin adapter that applies a `BuildPlan` to a real TensorRT builder and config.

It touches only names present in every release the plan allows; the version decisions were made
in `plan_build`. Tests run it against fakes generated from each release's real name table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, List, Optional

from edge.engine.plan import BuildPlan
from edge.errors import EdgeBuildError

__all__ = ["BuildOutput", "apply_plan"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildOutput:
    plan: bytes
    timing_cache: Optional[bytes]
    gpu_fallback_layers: Optional[List[str]]  # DLA builds: layers DLA cannot run


def _network_flags(trt: Any, names: tuple) -> int:
    flags = 0
    for name in names:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    return flags


def _parse(trt: Any, parser: Any, onnx: bytes, origin: str) -> None:
    if parser.parse(onnx):
        return
    errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
    raise EdgeBuildError(
        "{}: TensorRT's ONNX parser failed: {}".format(origin, "; ".join(errors) or "no detail")
    )


def _dla_fallback(config: Any, network: Any) -> List[str]:
    names = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if not config.can_run_on_DLA(layer):
            names.append(str(layer.name))
    return names


def apply_plan(
    trt: Any,
    plan: BuildPlan,
    onnx: bytes,
    *,
    origin: str = "model.onnx",
    timing_cache: Optional[bytes] = None,
    logger: Any = None,
) -> BuildOutput:
    """Parse `onnx`, configure the builder as planned and return the serialized engine."""
    logger = logger if logger is not None else trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, plan.network_flags))
    parser = trt.OnnxParser(network, logger)
    _parse(trt, parser, onnx, origin)
    config = builder.create_builder_config()
    for name in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    if plan.workspace_bytes is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    if plan.optimization_level is not None:
        config.builder_optimization_level = plan.optimization_level
    fallback = None
    if plan.dla_core is not None:
        available = int(builder.num_DLA_cores)
        if plan.dla_core >= available:
            raise EdgeBuildError(
                f"DLA core {plan.dla_core} requested but this device has {available} DLA cores"
            )
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
        fallback = _dla_fallback(config, network)
        if fallback:
            log.warning("%d layers fall back from DLA to the GPU", len(fallback))
    cache = None
    if plan.timing_cache:
        cache = config.create_timing_cache(timing_cache or b"")
        if not config.set_timing_cache(cache, False):
            log.warning("the stored timing cache does not fit this device; starting a new one")
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgeBuildError(f"{origin}: TensorRT could not build an engine (see its log above)")
    cache_bytes = bytes(config.get_timing_cache().serialize()) if cache is not None else None
    return BuildOutput(
        plan=bytes(serialized), timing_cache=cache_bytes, gpu_fallback_layers=fallback
    )
