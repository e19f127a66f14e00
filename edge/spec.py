"""What a deployed model expects and returns, in plain data that crosses to the device.

A `ModelSpec` travels inside the bundle's manifest, so the device runtime can preprocess frames
and name classes with numpy alone, without the training code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from edge.errors import EdgeBuildError

__all__ = [
    "TensorSpec",
    "FlowSettings",
    "Preprocessing",
    "ModelSpec",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FLOW_PREFIX",
    "FLOW_U",
    "FLOW_V",
    "FLOW_STRAIN",
    "FLOW_IMAGE",
    "FLOW_SOURCES",
    "is_flow_source",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Feed sources computed from the `onset` and `apex` roles by `edge.flow`.
FLOW_PREFIX = "flow:"
FLOW_U = "flow:u"  # 1xHxW horizontal flow
FLOW_V = "flow:v"  # 1xHxW vertical flow
FLOW_STRAIN = "flow:strain"  # 1xHxW optical strain
FLOW_IMAGE = "flow:image"  # 3xHxW: u, v, strain (STSTNet's input)
FLOW_SOURCES = (FLOW_U, FLOW_V, FLOW_STRAIN, FLOW_IMAGE)


def is_flow_source(source: str) -> bool:
    return source.startswith(FLOW_PREFIX)


Dim = Union[int, str]


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor: shape (a string names a dynamic axis), dtype and meaning."""

    name: str
    shape: Tuple[Dim, ...]
    dtype: str = "float32"
    description: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> TensorSpec:
        return cls(
            name=str(data["name"]),
            shape=tuple(data["shape"]),
            dtype=str(data.get("dtype", "float32")),
            description=str(data.get("description", "")),
        )


@dataclass(frozen=True)
class FlowSettings:
    """How the `flow:*` sources are computed from the registered onset/apex pair.

    The pair is stored and flow computed at `size` (height, width), in pixels at that size, by
    `method` (a name in `edge.flow`'s registry); the result is resampled to the input size.
    u, v are multiplied by `scale` and clipped to [-clip, clip]; strain is multiplied by
    `strain_scale` and clipped to [0, strain_clip]; a clip of 0 means none. Scaling lives here,
    not in the network, so INT8 calibration sees the same ranges the device feeds.
    """

    method: str = "dis"
    size: Tuple[int, int] = (112, 112)
    scale: float = 1.0
    clip: float = 0.0
    strain_scale: float = 1.0
    strain_clip: float = 0.0

    def __post_init__(self) -> None:
        if len(self.size) == 2:
            object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))
        if not self.method:
            raise EdgeBuildError("flow.method must name an optical-flow method, e.g. 'dis'")
        if len(self.size) != 2 or any(int(v) < 8 for v in self.size):
            raise EdgeBuildError(f"flow.size must be (height, width), each >= 8; got {self.size}")
        for key in ("clip", "strain_clip"):
            if getattr(self, key) < 0:
                raise EdgeBuildError(f"flow.{key} must be >= 0 (0 = no clipping)")

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["size"] = list(self.size)
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> FlowSettings:
        return cls(
            method=str(data.get("method", "dis")),
            size=tuple(int(v) for v in data.get("size", (112, 112))),  # type: ignore[arg-type]
            scale=float(data.get("scale", 1.0)),
            clip=float(data.get("clip", 0.0)),
            strain_scale=float(data.get("strain_scale", 1.0)),
            strain_clip=float(data.get("strain_clip", 0.0)),
        )


@dataclass(frozen=True)
class Preprocessing:
    """How a frame becomes an input tensor (all outside the engine).

    Frames are HxWx3 uint8 images in `color` order, resized to `size` (height, width), scaled by
    `scale`, normalised per channel with `mean`/`std` and laid out as `layout`.
    """

    size: Tuple[int, int] = (224, 224)
    color: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    layout: str = "NCHW"
    resize: str = "bilinear"
    frames: Tuple[str, ...] = ("onset", "apex")
    alignment: str = "precropped"
    #: (input name, source) pairs; empty means input i takes frame role i (MMNet, old bundles).
    #: Sources: a frame role (`onset`, `apex`), `clip` (roles `clip:0`..`clip:T-1` stacked to
    #: [3, T, H, W]), `depth:<role>` (relative depth, one channel), `mask:regions`, or a flow
    #: source computed from `onset` and `apex` (`flow:u`, `flow:v`, `flow:strain`: 1xHxW;
    #: `flow:image`: 3xHxW u, v, strain) as `flow` declares.
    feeds: Tuple[Tuple[str, str], ...] = ()
    #: Depth inputs: relative depth u8 (255 nearest) * scale, then (x - mean) / std.
    depth_mean: float = 0.5
    depth_std: float = 0.5
    #: Raw depth (mm) -> relative depth: the `depth_range_mm` behind the nearest face point.
    depth_range_mm: float = 100.0
    #: Optical-flow settings; set when any feed is a `flow:*` source.
    flow: Optional[FlowSettings] = None

    @property
    def storage_size(self) -> Tuple[int, int]:
        """(height, width) role frames are stored and rendered at: `flow.size` for flow models
        (flow needs more pixels than the network's input), else `size`."""
        return self.flow.size if self.flow is not None else self.size

    @property
    def reads_flow(self) -> bool:
        """Whether any input is a `flow:*` source (computed from uint8 onset and apex)."""
        return any(is_flow_source(source) for _, source in self.feeds)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        for key in ("size", "mean", "std", "frames"):
            data[key] = list(data[key])
        data["feeds"] = [list(pair) for pair in self.feeds]
        # Absent, not null, without flow: specs (and the cache keys hashed from them) of
        # frame models stay byte-identical to those written before flow existed.
        if self.flow is None:
            del data["flow"]
        else:
            data["flow"] = self.flow.to_dict()
        return data

    def input_sources(self, input_names: Sequence[str]) -> Tuple[Tuple[str, str], ...]:
        """(input name, source) for every input, the default pairing filled in."""
        if self.feeds:
            return self.feeds
        return tuple(zip(input_names, self.frames))

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Preprocessing:
        return cls(
            size=tuple(int(v) for v in data["size"]),  # type: ignore[arg-type]
            color=str(data["color"]),
            scale=float(data["scale"]),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
            layout=str(data["layout"]),
            resize=str(data["resize"]),
            frames=tuple(str(v) for v in data["frames"]),
            alignment=str(data.get("alignment", "precropped")),
            feeds=tuple((str(a), str(b)) for a, b in data.get("feeds", ())),
            depth_mean=float(data.get("depth_mean", 0.5)),
            depth_std=float(data.get("depth_std", 0.5)),
            depth_range_mm=float(data.get("depth_range_mm", 100.0)),
            flow=FlowSettings.from_dict(data["flow"]) if data.get("flow") else None,
        )


@dataclass(frozen=True)
class ModelSpec:
    """Inputs, preprocessing, outputs and class names of one architecture variant.

    `precision_hints` names ONNX nodes (or name prefixes) that quantization keeps in higher
    precision; `notes` records facts a deployer should know (dropped logits, dead modules).
    `au_names` names the columns of a multi-label `au_logits` output (sigmoid > 0.5: present).
    """

    arch: str
    variant: str
    inputs: Tuple[TensorSpec, ...]
    outputs: Tuple[TensorSpec, ...]
    preprocessing: Preprocessing
    class_names: Tuple[str, ...]
    protocol: str = ""
    precision_hints: Tuple[str, ...] = ()
    notes: Tuple[str, ...] = field(default=())
    au_names: Tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def input_names(self) -> Tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    def output_names(self) -> Tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def with_class_names(self, names: Optional[Sequence[str]]) -> ModelSpec:
        """Return a copy with user-supplied class names (same count as the model's logits)."""
        if names is None:
            return self
        cleaned = tuple(str(n).strip() for n in names)
        if any(not n for n in cleaned):
            raise EdgeBuildError(f"class names must not be empty: {list(names)!r}")
        if len(set(cleaned)) != len(cleaned):
            raise EdgeBuildError(f"class names must be unique: {list(cleaned)!r}")
        if len(cleaned) != self.num_classes:
            raise EdgeBuildError(
                "{} class names given ({}), but this {} {} model has {} classes ({})".format(
                    len(cleaned),
                    ", ".join(cleaned),
                    self.arch,
                    self.variant,
                    self.num_classes,
                    ", ".join(self.class_names),
                )
            )
        return replace(self, class_names=cleaned)

    def with_batch(self, batch: Dim) -> ModelSpec:
        """Return a copy whose inputs and outputs have `batch` (an int or an axis name) first."""

        def rebatch(tensors: Tuple[TensorSpec, ...]) -> Tuple[TensorSpec, ...]:
            return tuple(replace(t, shape=(batch,) + tuple(t.shape[1:])) for t in tensors)

        return replace(self, inputs=rebatch(self.inputs), outputs=rebatch(self.outputs))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "arch": self.arch,
            "variant": self.variant,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "preprocessing": self.preprocessing.to_dict(),
            "class_names": list(self.class_names),
            "protocol": self.protocol,
            "precision_hints": list(self.precision_hints),
            "notes": list(self.notes),
            "au_names": list(self.au_names),
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> ModelSpec:
        return cls(
            arch=str(data["arch"]),
            variant=str(data["variant"]),
            inputs=tuple(TensorSpec.from_dict(t) for t in data["inputs"]),
            outputs=tuple(TensorSpec.from_dict(t) for t in data["outputs"]),
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            class_names=tuple(str(c) for c in data["class_names"]),
            protocol=str(data.get("protocol", "")),
            precision_hints=tuple(str(h) for h in data.get("precision_hints", ())),
            notes=tuple(str(n) for n in data.get("notes", ())),
            au_names=tuple(str(n) for n in data.get("au_names", ())),
        )
