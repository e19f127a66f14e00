"""FAMNet's configuration and ModelSpec, without torch (the device reads these from the bundle).

FAMNet: Fu, Wu, Huang, Yin, "FAMNet: Integrating 2D and 3D Features for Micro-expression
Recognition via Multi-task Learning and Hierarchical Attention", IJCNN 2025, arXiv:2508.13483.
No code or weights are public; mer-edge's model is a re-implementation from the abstract, and
every detail it leaves open is a field of `FAMNetConfig` with the default documented here and in
docs/models.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Tuple, Union

from edge.errors import CheckpointError, EdgeBuildError
from edge.frames import clip_roles
from edge.models.checkpoint import config_fields_from_json
from edge.spec import ModelSpec, Preprocessing, TensorSpec

__all__ = [
    "ARCH",
    "FAMNetConfig",
    "CASME2_5_CLASSES",
    "DEFAULT_AUS",
    "FUSIONS",
    "PRECISION_HINTS",
    "famnet_spec",
]

ARCH = "famnet"

#: CASME II 5-class, in MMNet's label order (the synthetic data generator supports these).
CASME2_5_CLASSES = ("happiness", "repression", "disgust", "surprise", "others")

#: FACS action units coded in CASME II, SAMM and MMEW that MER work commonly detects (brows,
#: lids, nose, lip corners, chin). An assumption: FAMNet's AU list is unpublished. Laterality
#: (L/R prefixes in the coding sheets) is ignored: `L10` counts as AU10.
DEFAULT_AUS = (
    "AU1",
    "AU2",
    "AU4",
    "AU5",
    "AU6",
    "AU7",
    "AU9",
    "AU10",
    "AU12",
    "AU14",
    "AU15",
    "AU17",
)

#: Late fusion rules: "learned" = convex weights softmax(w) (initialised equal, i.e. the mean),
#: "mean" = fixed average of the two branches' logits.
FUSIONS = ("learned", "mean")

#: ONNX node-name prefixes INT8 keeps in higher precision. An initial guess, not measured: the
#: first 3D convolution (raw clip, 7x7 spatial taps, few channels), the attention gates
#: (sigmoid maps multiplied into every stage), the four heads and the late fusion.
PRECISION_HINTS = (
    "/amnet3d_stem/",
    "/amnet2d_attn.",
    "/amnet3d_attn.",
    "/amnet2d_heads/",
    "/amnet3d_heads/",
    "/fusion/",
)


@dataclass(frozen=True)
class FAMNetConfig:
    """Every open choice of the FAMNet re-implementation, with its default.

    Attributes:
        class_names: emotion classes, in logit order (CASME II 5-class as for MMNet).
        au_names: action units of the multi-label head, in column order.
        clip_length: frames T of the AMNet3D clip, evenly spaced from onset to apex (fixed
            at export).
        size: input side in pixels (square), for the apex frame and every clip frame.
        base_width: channels of the first stage; later stages double it (64 = ResNet-18).
        blocks: BasicBlocks per stage (ResNet-18: 2, 2, 2, 2).
        reduction: channel reduction of the CBAM channel attention.
        fusion: late fusion rule of the two branches' scores, "learned" or "mean".
        variant: name recorded in the spec and manifest.
        protocol: what the class names mean (dataset, split).
    """

    class_names: Tuple[str, ...] = CASME2_5_CLASSES
    au_names: Tuple[str, ...] = DEFAULT_AUS
    clip_length: int = 8
    size: int = 112
    base_width: int = 64
    blocks: Tuple[int, ...] = (2, 2, 2, 2)
    reduction: int = 16
    fusion: str = "learned"
    variant: str = "casme2-5"
    protocol: str = "CASME II 5-class (assumed; FAMNet's protocol is unpublished)"

    def __post_init__(self) -> None:
        problems = []
        if self.fusion not in FUSIONS:
            problems.append(f"fusion {self.fusion!r} is not one of {FUSIONS}")
        if self.clip_length < 2:
            problems.append(f"clip_length {self.clip_length} must be >= 2")
        if self.size < 32:
            problems.append(f"size {self.size} must be >= 32")
        if self.base_width < 1 or self.reduction < 1 or not self.blocks:
            problems.append("base_width, reduction and blocks must be positive")
        elif min(self.blocks) < 1:
            problems.append(f"blocks {self.blocks} must all be >= 1")
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            problems.append(f"class_names must be >= 2 unique names, got {self.class_names}")
        if not self.au_names or len(set(self.au_names)) != len(self.au_names):
            problems.append(f"au_names must be >= 1 unique names, got {self.au_names}")
        if problems:
            raise EdgeBuildError("invalid FAMNet config: " + "; ".join(problems))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def widths(self) -> Tuple[int, ...]:
        return tuple(self.base_width * 2**i for i in range(len(self.blocks)))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, where: str = "FAMNet config") -> FAMNetConfig:
        """Parse `to_json` output; any problem is a CheckpointError naming `where`."""
        kwargs = config_fields_from_json(cls, text, where)
        try:
            return cls(**kwargs)
        except (EdgeBuildError, TypeError) as exc:
            raise CheckpointError(f"{where}: {exc}") from exc


def famnet_spec(config: FAMNetConfig, *, batch: Union[int, str] = 1) -> ModelSpec:
    """The deployable interface: apex RGB + clip RGB -> emotion logits and AU logits."""
    side, frames = config.size, config.clip_length
    aus = ", ".join(config.au_names)
    return ModelSpec(
        arch=ARCH,
        variant=config.variant,
        inputs=(
            TensorSpec("apex", (batch, 3, side, side), "float32", "apex frame, normalised RGB"),
            TensorSpec(
                "clip",
                (batch, 3, frames, side, side),
                "float32",
                f"{frames} frames evenly spaced from onset to apex, normalised RGB, [B,3,T,H,W]",
            ),
        ),
        outputs=(
            TensorSpec(
                "logits",
                (batch, config.num_classes),
                "float32",
                f"emotion logits, late fusion ({config.fusion}) of AMNet2D and AMNet3D",
            ),
            TensorSpec(
                "au_logits",
                (batch, len(config.au_names)),
                "float32",
                f"action-unit logits ({aus}); sigmoid > 0.5 = present (multi-label)",
            ),
        ),
        preprocessing=Preprocessing(
            size=(side, side),
            frames=("apex",) + clip_roles(frames),
            feeds=(("apex", "apex"), ("clip", "clip")),
        ),
        class_names=config.class_names,
        protocol=config.protocol,
        precision_hints=PRECISION_HINTS,
        notes=(
            "re-implementation from the FAMNet abstract (arXiv:2508.13483): no public code or "
            "weights; architecture details are mer-edge's documented assumptions",
        ),
        au_names=config.au_names,
    )
