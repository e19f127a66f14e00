"""`edge-export triton`: a bundle as one model of a Triton model repository.

    REPO/<model>/config.pbtxt
    REPO/<model>/1/model.onnx   (onnxruntime_onnx, anywhere)
    REPO/<model>/1/model.plan   (tensorrt_plan, on the Jetson: the engine built for it)

`config.pbtxt` is Triton's `ModelConfig` protobuf (from tritonclient) printed as text, so it
holds only fields and enum values Triton knows. Dynamic batching needs a batch axis in the
model: bundles built with `edge-build --dynamic-batch` have one; a fixed-batch bundle is
exported with `--max-batch 0` (Triton then sends one request at a time).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from edge._lazy import require
from edge.bundle import Bundle, staged_directory
from edge.errors import EdgeBuildError
from edge.fleet.tensors import by_name, has_batch_axis, served_outputs, triton_tensors

__all__ = [
    "KINDS",
    "PLATFORMS",
    "RepositoryOptions",
    "choose_platform",
    "model_config",
    "on_jetson",
    "write_repository",
]

PLATFORMS = ("auto", "onnxruntime_onnx", "tensorrt_plan")
#: --instance-kind -> Triton's instance group kind; auto lets Triton pick the GPU if it has one.
KINDS = {"auto": "KIND_AUTO", "gpu": "KIND_GPU", "cpu": "KIND_CPU"}
MODEL_FILES = {"onnxruntime_onnx": "model.onnx", "tensorrt_plan": "model.plan"}
CONFIG_NAME = "config.pbtxt"


@dataclass(frozen=True)
class RepositoryOptions:
    model_name: str
    precision: str = "fp32"
    platform: str = "auto"
    max_batch: int = 8
    instances: int = 1
    kind: str = "auto"
    queue_delay_us: int = 0


def on_jetson(root: Path = Path("/")) -> bool:
    """A Jetson (L4T) marks itself with /etc/nv_tegra_release."""
    return (root / "etc/nv_tegra_release").is_file()


def choose_platform(requested: str, *, jetson: bool) -> str:
    if requested not in PLATFORMS:
        raise EdgeBuildError(f"unknown platform {requested!r}; choose from {PLATFORMS}")
    if requested != "auto":
        return requested
    return "tensorrt_plan" if jetson else "onnxruntime_onnx"


def _model_config_pb2() -> Any:
    return require("tritonclient.grpc.model_config_pb2", purpose="writing config.pbtxt")


def model_config(bundle: Bundle, platform: str, options: RepositoryOptions) -> Any:
    """The `ModelConfig` message for this bundle.

    Raises:
        EdgeBuildError: batching asked for a model without a batch axis, or bad counts.
    """
    pb = _model_config_pb2()
    spec = bundle.spec
    if options.max_batch < 0 or options.instances < 1 or options.queue_delay_us < 0:
        raise EdgeBuildError("--max-batch >= 0, --instances >= 1 and --queue-delay-us >= 0")
    if options.kind not in KINDS:
        raise EdgeBuildError(f"unknown instance kind {options.kind!r}; choose from {list(KINDS)}")
    batching = options.max_batch > 0
    if batching and platform == "tensorrt_plan":
        # edge.cli.engine builds fixed-shape engines (no optimization profile for a batch range)
        raise EdgeBuildError(
            f"{bundle.root}: engines built by edge.cli.engine have a fixed batch, so Triton "
            "cannot batch them: export with --max-batch 0 (or --platform onnxruntime_onnx)"
        )
    if batching and not has_batch_axis(spec.inputs):
        shapes = {t.name: list(t.shape) for t in spec.inputs}
        raise EdgeBuildError(
            f"{bundle.root}: the model has a fixed batch ({shapes}); Triton's dynamic batching "
            "needs a batch axis: rebuild the bundle with `edge-build --dynamic-batch`, or "
            "export without batching: --max-batch 0"
        )
    outputs = by_name({o.name: o for o in spec.outputs}, served_outputs(spec))
    config = pb.ModelConfig(name=options.model_name, platform=platform)
    config.max_batch_size = options.max_batch
    for tensor in triton_tensors(spec.inputs, batching=batching):
        config.input.add(
            name=tensor.name,
            data_type=pb.DataType.Value(tensor.triton_type),
            dims=list(tensor.dims),
        )
    for tensor in triton_tensors(outputs, batching=batching):
        config.output.add(
            name=tensor.name,
            data_type=pb.DataType.Value(tensor.triton_type),
            dims=list(tensor.dims),
        )
    if batching:
        config.dynamic_batching.max_queue_delay_microseconds = options.queue_delay_us
    kind = "KIND_GPU" if platform == "tensorrt_plan" else KINDS[options.kind]
    config.instance_group.add(count=options.instances, kind=pb.ModelInstanceGroup.Kind.Value(kind))
    return config


def _engine_path(bundle: Bundle, precision: str, trt: Any, device: Any) -> Path:
    """This device's engine from the bundle's manifest (built by `python3 -m edge.cli.engine`)."""
    from edge.engine import engine_for_device, probe_device

    trt = trt or require("tensorrt", purpose="exporting a tensorrt_plan model")
    if device is None:
        from edge._lazy import is_available
        from edge.engine.device import load_cudart

        device = probe_device(cudart=load_cudart() if is_available("cuda") else None)
    entry = engine_for_device(bundle, precision, trt=trt, device=device)
    return bundle.path(entry["file"])


def write_repository(
    bundle: Bundle,
    repository: Path,
    options: RepositoryOptions,
    *,
    jetson: Optional[bool] = None,
    trt: Any = None,
    device: Any = None,
) -> Path:
    """Write `repository/<model_name>/` (replacing only an earlier export) and return it.

    `jetson`, `trt` and `device` default to this machine; tests inject them.
    """
    text_format = require("google.protobuf.text_format", purpose="writing config.pbtxt")
    platform = choose_platform(options.platform, jetson=on_jetson() if jetson is None else jetson)
    config = model_config(bundle, platform, options)
    if platform == "tensorrt_plan":
        source = _engine_path(bundle, options.precision, trt, device)
    else:
        source = bundle.onnx_path(options.precision)
    with staged_directory(Path(repository) / options.model_name, marker=CONFIG_NAME) as stage:
        (stage / "1").mkdir()
        shutil.copyfile(source, stage / "1" / MODEL_FILES[platform])
        (stage / CONFIG_NAME).write_text(text_format.MessageToString(config), encoding="utf-8")
    return Path(repository) / options.model_name
