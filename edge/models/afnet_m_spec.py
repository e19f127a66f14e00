"""AFNet-M's configuration and ModelSpec, without torch (the device reads these from the bundle).

AFNet-M: "AFNet-M: Adaptive Fusion Network with Masks for 2D+3D Facial Expression
Recognition", arXiv:2205.11785 (2022; ICIP 2023). No code or weights are public; mer-edge's
model is a re-implementation from the abstract, and every detail the paper leaves open is a
field of `AFNetMConfig` with the default documented here and in docs/models.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Tuple, Union

from edge.errors import CheckpointError, EdgeBuildError
from edge.models.checkpoint import config_fields_from_json
from edge.spec import ModelSpec, Preprocessing, TensorSpec

__all__ = [
    "ARCH",
    "AFNetMConfig",
    "BU3DFE_CLASSES",
    "MASK_MODES",
    "PRECISION_HINTS",
    "afnet_m_spec",
]

ARCH = "afnet_m"

#: The six basic expressions of BU-3DFE, alphabetical (the paper's class order is not given).
BU3DFE_CLASSES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")

#: "constant": the region mask is a buffer inside the graph; "input": a third input `mask`.
MASK_MODES = ("constant", "input")

#: ONNX node-name prefixes INT8 keeps in higher precision. An initial guess, not measured: the
#: mask attention and fusion produce small-range gates (sigmoid/softmax) that scale whole
#: feature maps, and the classifier's logits are the output itself.
PRECISION_HINTS = ("/mask_attn_", "/fusion.", "/classifier/")


@dataclass(frozen=True)
class AFNetMConfig:
    """Every open choice of the AFNet-M re-implementation, with its default.

    Attributes:
        class_names: expression classes, in logit order (BU-3DFE's six basic expressions).
        size: input side in pixels (square; a multiple of 16). 112 is the ArcFace template's
            native crop, so the region mask needs no rescaling.
        stem_width: channels of each branch's stride-2 stem convolution.
        widths: channels of the conv stages; stage 1 keeps the stem's resolution, every later
            stage halves it (112 -> 56, 28, 14, 7).
        convs_per_stage: 3x3 conv-BN-ReLU layers per stage (the first one strides).
        reduction: channel reduction of the mask-attention and fusion bottlenecks.
        mask_mode: "constant" (mask built into the graph) or "input" (a `mask` input).
        variant: name recorded in the spec and manifest.
        protocol: what the class names mean (dataset, split).
    """

    class_names: Tuple[str, ...] = BU3DFE_CLASSES
    size: int = 112
    stem_width: int = 24
    widths: Tuple[int, ...] = (32, 64, 128, 256)
    convs_per_stage: int = 2
    reduction: int = 4
    mask_mode: str = "constant"
    variant: str = "bu3dfe-6"
    protocol: str = "BU-3DFE 6 basic expressions (assumed; AFNet-M's protocol is unpublished)"

    def __post_init__(self) -> None:
        problems = []
        if self.mask_mode not in MASK_MODES:
            problems.append(f"mask_mode {self.mask_mode!r} is not one of {MASK_MODES}")
        stride = 2 ** len(self.widths)
        if self.size < stride or self.size % stride:
            problems.append(f"size {self.size} is not a positive multiple of {stride}")
        if not self.widths or min(self.widths) < 1 or self.stem_width < 1:
            problems.append(f"widths {self.widths} / stem_width {self.stem_width} must be >= 1")
        if self.convs_per_stage < 1 or self.reduction < 1:
            problems.append("convs_per_stage and reduction must be >= 1")
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            problems.append(f"class_names must be >= 2 unique names, got {self.class_names}")
        if problems:
            raise EdgeBuildError("invalid AFNet-M config: " + "; ".join(problems))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, where: str = "AFNet-M config") -> AFNetMConfig:
        """Parse `to_json` output; any problem is a CheckpointError naming `where`."""
        kwargs = config_fields_from_json(cls, text, where)
        try:
            return cls(**kwargs)
        except (EdgeBuildError, TypeError) as exc:
            raise CheckpointError(f"{where}: {exc}") from exc


def afnet_m_spec(config: AFNetMConfig, *, batch: Union[int, str] = 1) -> ModelSpec:
    """The deployable interface: texture RGB + relative depth (+ mask) -> expression logits."""
    side = config.size
    inputs = [
        TensorSpec(
            "texture", (batch, 3, side, side), "float32", "apex frame, ImageNet-normalised RGB"
        ),
        TensorSpec(
            "depth",
            (batch, 1, side, side),
            "float32",
            "relative depth at the apex (255 nearest, 0 far/invalid), (d/255 - 0.5) / 0.5",
        ),
    ]
    feeds = [("texture", "apex"), ("depth", "depth:apex")]
    if config.mask_mode == "input":
        inputs.append(
            TensorSpec(
                "mask",
                (batch, 1, side, side),
                "float32",
                "facial-region mask in {0,1} (edge.face_regions.region_mask)",
            )
        )
        feeds.append(("mask", "mask:regions"))
    notes = (
        "re-implementation from the AFNet-M abstract (arXiv:2205.11785): no public code or "
        "weights; architecture details are mer-edge's documented assumptions",
        f"mask_mode={config.mask_mode}: the region mask is "
        + ("a constant inside the graph" if config.mask_mode == "constant" else "the `mask` input"),
    )
    return ModelSpec(
        arch=ARCH,
        variant=config.variant,
        inputs=tuple(inputs),
        outputs=(TensorSpec("logits", (batch, config.num_classes), "float32", "class logits"),),
        preprocessing=Preprocessing(
            size=(side, side),
            frames=("apex", "depth:apex"),
            feeds=tuple(feeds),
        ),
        class_names=config.class_names,
        protocol=config.protocol,
        precision_hints=PRECISION_HINTS,
        notes=notes,
    )
