"""What a deployed model expects and returns, in plain data that crosses to the device.

A `ModelSpec` travels inside the bundle's manifest, so the device runtime can preprocess frames
and name classes with numpy alone, without the training code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from edge.errors import EdgeBuildError

__all__ = ["TensorSpec", "Preprocessing", "ModelSpec", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

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
    #: [3, T, H, W]), `depth:<role>` (relative depth, one channel) or `mask:regions`.
    feeds: Tuple[Tuple[str, str], ...] = ()
    #: Depth inputs: relative depth u8 (255 nearest) * scale, then (x - mean) / std.
    depth_mean: float = 0.5
    depth_std: float = 0.5
    #: Raw depth (mm) -> relative depth: the `depth_range_mm` behind the nearest face point.
    depth_range_mm: float = 100.0

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        for key in ("size", "mean", "std", "frames"):
            data[key] = list(data[key])
        data["feeds"] = [list(pair) for pair in self.feeds]
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
