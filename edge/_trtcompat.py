"""What the TensorRT in this process can do, decided once by capability checks.

Version branching lives in pure code (`edge.engine.plan_build`) that reads a `TrtCaps`; only
this function touches the live module. Checks use names whose presence is unambiguous:
`BuilderFlag.FP16` (removed in TensorRT 11 with the other weak-typing precision flags) rather
than `BuilderFlag.INT8`, because `INT8` also names a `DataType` member in every release.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, Tuple

from edge.errors import EdgeBuildError

__all__ = ["TrtCaps", "caps_from_module", "parse_version"]


def parse_version(text: str) -> Tuple[int, ...]:
    """'10.3.0.26' -> (10, 3, 0, 26); raises EdgeBuildError on anything else."""
    match = re.match(r"^\s*(\d+(?:\.\d+)*)", str(text))
    if not match:
        raise EdgeBuildError(f"tensorrt.__version__ {text!r} is not a version number")
    return tuple(int(p) for p in match.group(1).split("."))


@dataclass(frozen=True)
class TrtCaps:
    """Capabilities of one TensorRT installation (hand-made in unit tests)."""

    version: Tuple[int, ...]
    precision_flags: bool  # BuilderFlag.FP16 / INT8 (weak typing); gone in 11.x
    explicit_batch_flag: bool  # NetworkDefinitionCreationFlag.EXPLICIT_BATCH; needed on 8.x
    strongly_typed_flag: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED; 10.x opt-in
    memory_pool_limit: bool  # IBuilderConfig.set_memory_pool_limit
    optimization_level: bool  # IBuilderConfig.builder_optimization_level (8.6+)
    timing_cache: bool  # IBuilderConfig.create_timing_cache / set_timing_cache
    serialized_build: bool  # Builder.build_serialized_network
    tensor_name_api: bool  # num_io_tensors, get_tensor_name, execute_async_v3
    dla: bool  # DeviceType.DLA and IBuilderConfig.DLA_core
    gpu_fallback: bool  # BuilderFlag.GPU_FALLBACK
    engine_inspector: bool  # ICudaEngine.create_engine_inspector

    @property
    def version_text(self) -> str:
        return ".".join(str(p) for p in self.version)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["version"] = self.version_text
        return data


def _has(owner: Any, name: str) -> bool:
    return owner is not None and hasattr(owner, name)


def _get(module: Any, name: str) -> Any:
    return getattr(module, name) if hasattr(module, name) else None


def caps_from_module(trt: Any) -> TrtCaps:
    """Fill `TrtCaps` from a live (or fake) `tensorrt` module by `hasattr` checks."""
    flag = _get(trt, "BuilderFlag")
    net_flag = _get(trt, "NetworkDefinitionCreationFlag")
    config = _get(trt, "IBuilderConfig")
    engine = _get(trt, "ICudaEngine")
    context = _get(trt, "IExecutionContext")
    device_type = _get(trt, "DeviceType")
    return TrtCaps(
        version=parse_version(getattr(trt, "__version__", "")),
        precision_flags=_has(flag, "FP16"),
        explicit_batch_flag=_has(net_flag, "EXPLICIT_BATCH"),
        strongly_typed_flag=_has(net_flag, "STRONGLY_TYPED"),
        memory_pool_limit=_has(config, "set_memory_pool_limit") and _has(trt, "MemoryPoolType"),
        optimization_level=_has(config, "builder_optimization_level"),
        timing_cache=_has(config, "create_timing_cache") and _has(config, "set_timing_cache"),
        serialized_build=_has(_get(trt, "Builder"), "build_serialized_network"),
        tensor_name_api=_has(engine, "num_io_tensors")
        and _has(engine, "get_tensor_name")
        and _has(context, "execute_async_v3"),
        dla=_has(device_type, "DLA") and _has(config, "DLA_core"),
        gpu_fallback=_has(flag, "GPU_FALLBACK"),
        engine_inspector=_has(engine, "create_engine_inspector"),
    )
