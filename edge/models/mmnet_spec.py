"""MMNet variants and their ModelSpec, without torch (the device reads these from the bundle).

MMNet: Li, Sui, Zhu, Zhao, "MMNet: Muscle motion-guided network for micro-expression
recognition", IJCAI 2022, arXiv:2201.05297; official code github.com/muse1998/MMNet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from edge.spec import ModelSpec, Preprocessing, TensorSpec

__all__ = ["MMNetConfig", "VARIANTS", "CASME2_5_CLASSES", "CASME2_3_CLASSES", "mmnet_spec"]

#: Label order of the official `CASME2_5.py` (happiness 0 ... others 4).
CASME2_5_CLASSES = ("happiness", "repression", "disgust", "surprise", "others")
#: Label order of the official `CASME2_3.py`; negative = repression, disgust, fear, sadness.
CASME2_3_CLASSES = ("happiness", "surprise", "negative")

#: ONNX node-name prefixes the INT8 placement search tries first when all-INT8 misses the
#: accuracy budget: the motion path (onset/apex difference, stem, CA blocks), where INT8 hurt an
#: untrained MMNet most. A seed, not a decision: quantize/sensitivity.py measures each one.
PRECISION_HINTS = ("/Sub", "/conv_act/", "/main_branch/")


@dataclass(frozen=True)
class MMNetConfig:
    """Architecture hyper-parameters that differ between trained MMNet variants."""

    variant: str
    vit_depth: int
    mlp_ratio: int
    fc_rows: int
    class_names: Tuple[str, ...]
    protocol: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


VARIANTS = {
    "casme2-5": MMNetConfig(
        variant="casme2-5",
        vit_depth=2,
        mlp_ratio=4,
        fc_rows=5,
        class_names=CASME2_5_CLASSES,
        protocol="CASME II 5-class (official CASME2_5.py)",
    ),
    "casme2-3": MMNetConfig(
        variant="casme2-3",
        vit_depth=3,
        mlp_ratio=2,
        fc_rows=5,
        class_names=CASME2_3_CLASSES,
        protocol="CASME II 3-class (official CASME2_3.py; fc keeps 5 rows)",
    ),
}


def variant_for(vit_depth: int, mlp_ratio: int, fc_rows: int) -> Optional[MMNetConfig]:
    """The known variant with these hyper-parameters, if any."""
    for config in VARIANTS.values():
        if (config.vit_depth, config.mlp_ratio, config.fc_rows) == (vit_depth, mlp_ratio, fc_rows):
            return config
    return None


def mmnet_spec(config: MMNetConfig, *, batch: int | str = 1) -> ModelSpec:
    """The deployable interface: `(onset, apex)` RGB 224x224 ImageNet-normalised -> logits."""
    image = (batch, 3, 224, 224)
    notes = []
    if config.fc_rows > config.num_classes:
        notes.append(
            f"the checkpoint's fc has {config.fc_rows} rows; the export keeps the first {config.num_classes} logits (rows {config.num_classes}..{config.fc_rows - 1} "
            "are never a training target in the official code)"
        )
    return ModelSpec(
        arch="mmnet",
        variant=config.variant,
        inputs=(
            TensorSpec("onset", image, "float32", "onset frame, normalised RGB"),
            TensorSpec("apex", image, "float32", "apex frame, normalised RGB"),
        ),
        outputs=(TensorSpec("logits", (batch, config.num_classes), "float32", "class logits"),),
        preprocessing=Preprocessing(),
        class_names=config.class_names,
        protocol=config.protocol,
        precision_hints=PRECISION_HINTS,
        notes=tuple(notes),
    )
