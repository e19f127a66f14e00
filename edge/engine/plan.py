"""The engine build plan: a pure function of TensorRT capabilities and the user's request.

All TensorRT version branching happens here, on a `TrtCaps` (hand-made in unit tests), so the
policy of ARCHITECTURE.md section 3 is tested without TensorRT: explicit-quantized INT8 on every
version; FP16 by builder flag where the flag exists (8.5, 10.x) and from the FP16 ONNX where it
does not (11.x); unsupported requests are refused with "X is not available on TensorRT Y".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, Optional, Tuple

from edge._trtcompat import TrtCaps
from edge.errors import EdgeBuildError

__all__ = ["PRECISIONS", "MIN_TRT_FOR_TARGET", "BuildPlan", "plan_build"]

PRECISIONS = ("fp32", "fp16", "int8")

#: Oldest TensorRT that parses a bundle exported for each `edge-build --target-trt`:
#: opset 16 (8.5 target) parses everywhere; opset 17 with LayerNormalization needs 8.6.
MIN_TRT_FOR_TARGET = {"8.5": (8, 5), "8.6": (8, 6), "10": (8, 6), "11": (8, 6)}

MAX_OPTIMIZATION_LEVEL = 5


@dataclass(frozen=True)
class BuildPlan:
    """What the adapter does to a builder and config, as names of TensorRT enum members."""

    tensorrt: str
    precision: str
    onnx_model: str  # key of the bundle's `models` table: fp32, fp16 or int8
    network_flags: Tuple[str, ...]
    builder_flags: Tuple[str, ...]
    workspace_bytes: Optional[int]
    optimization_level: Optional[int]
    dla_core: Optional[int]
    timing_cache: bool
    check_dla_layers: bool
    notes: Tuple[str, ...]

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        for key in ("network_flags", "builder_flags", "notes"):
            data[key] = list(data[key])
        return data


def _unavailable(what: str, caps: TrtCaps, fix: str = "") -> EdgeBuildError:
    return EdgeBuildError(
        f"{what} is not available on TensorRT {caps.version_text}" + ("; " + fix if fix else "")
    )


def _onnx_for(precision: str, caps: TrtCaps, models: Iterable[str]) -> Tuple[str, Tuple[str, ...]]:
    """The bundle model to parse and the precision builder flags to set."""
    available = set(models)
    if precision == "fp32":
        return "fp32", ()
    if precision == "int8":
        if "int8" not in available:
            raise EdgeBuildError(
                "INT8 engines are built from the bundle's INT8 Q/DQ ONNX (explicit quantization), "
                "and this bundle has none; rebuild it on the host with edge-build --precision int8"
            )
        return "int8", (("INT8", "FP16") if caps.precision_flags else ())
    if caps.precision_flags:
        return "fp32", ("FP16",)
    if "fp16" not in available:
        raise _unavailable(
            "the FP16 builder flag",
            caps,
            "FP16 engines are built from the FP16 ONNX there, and this bundle has none: "
            "rebuild it on the host with edge-build --precision fp16",
        )
    return "fp16", ()


def plan_build(
    caps: TrtCaps,
    precision: str,
    target: Optional[str] = None,
    *,
    models: Iterable[str] = ("fp32",),
    workspace_mib: Optional[int] = None,
    optimization_level: Optional[int] = None,
    dla_core: Optional[int] = None,
    timing_cache: bool = True,
) -> BuildPlan:
    """Decide flags and steps for one engine build.

    Args:
        caps: capabilities of the TensorRT that will build.
        precision: fp32, fp16 or int8.
        target: the bundle's `--target-trt` (its ONNX opset); None skips that check.
        models: precisions the bundle holds an ONNX for.
        workspace_mib: workspace memory pool limit; None leaves TensorRT's default.
        optimization_level: builder optimization level 0-5; None leaves the default (3).
        dla_core: build for this DLA core with GPU fallback; None builds for the GPU.
        timing_cache: reuse and store the per-device timing cache when TensorRT has one.

    Raises:
        EdgeBuildError: the request is not possible with this TensorRT or bundle.
    """
    if precision not in PRECISIONS:
        raise EdgeBuildError(
            "unknown precision {!r}; choose one of {}".format(precision, ", ".join(PRECISIONS))
        )
    if not caps.serialized_build:
        raise _unavailable("Builder.build_serialized_network", caps)
    if target is not None:
        if target not in MIN_TRT_FOR_TARGET:
            raise EdgeBuildError(f"unknown bundle target TensorRT {target!r}")
        needed = MIN_TRT_FOR_TARGET[target]
        if caps.version[:2] < needed:
            raise EdgeBuildError(
                f"this bundle was exported for TensorRT {target} and needs TensorRT {needed[0]}.{needed[1]} or newer to "
                f"parse, but this device has {caps.version_text}; rebuild it on the host with edge-build "
                f"--target-trt {caps.version[0]}.{caps.version[1]}"
            )
    onnx_model, flags = _onnx_for(precision, caps, models)
    notes = []
    if not caps.precision_flags:
        notes.append("strongly typed network: precision comes from the ONNX")
    network_flags: Tuple[str, ...] = ()
    # Releases that know STRONGLY_TYPED (10.x) are explicit-batch only; 8.x needs the flag.
    if caps.explicit_batch_flag and not caps.strongly_typed_flag:
        network_flags = ("EXPLICIT_BATCH",)
    workspace_bytes = None
    if workspace_mib is not None:
        if workspace_mib <= 0:
            raise EdgeBuildError(f"--workspace-mib must be positive, got {workspace_mib}")
        if not caps.memory_pool_limit:
            raise _unavailable("IBuilderConfig.set_memory_pool_limit", caps)
        workspace_bytes = int(workspace_mib) << 20
    if optimization_level is not None:
        if not 0 <= optimization_level <= MAX_OPTIMIZATION_LEVEL:
            raise EdgeBuildError(
                f"builder optimization level must be 0-{MAX_OPTIMIZATION_LEVEL}, got {optimization_level}"
            )
        if not caps.optimization_level:
            raise _unavailable("the builder optimization level", caps, "omit --opt-level")
    builder_flags = list(flags)
    if dla_core is not None:
        if dla_core < 0:
            raise EdgeBuildError(f"--dla-core must be 0 or more, got {dla_core}")
        if not caps.dla:
            raise _unavailable("DLA", caps)
        if precision == "fp32":
            raise EdgeBuildError("DLA runs FP16 and INT8 only; use --precision fp16 or int8")
        if not caps.gpu_fallback:
            raise _unavailable("BuilderFlag.GPU_FALLBACK", caps)
        builder_flags.append("GPU_FALLBACK")
        notes.append("layers DLA cannot run fall back to the GPU")
    return BuildPlan(
        tensorrt=caps.version_text,
        precision=precision,
        onnx_model=onnx_model,
        network_flags=network_flags,
        builder_flags=tuple(builder_flags),
        workspace_bytes=workspace_bytes,
        optimization_level=optimization_level,
        dla_core=dla_core,
        timing_cache=bool(timing_cache and caps.timing_cache),
        check_dla_layers=dla_core is not None,
        notes=tuple(notes),
    )
