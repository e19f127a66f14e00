"""The training recipes of the shipped demo models: data, split and optimiser, per architecture.

One place for them, because three things must agree: the trainer (`calib.train`) that makes a
demo, the model card (`calib.model_card`) that measures it on the recipe's held-out
pseudo-subjects, and the docs that quote both. The numbers are those of the GPU reference runs
that made the shipped assets (`docs/models.md`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

from calib.synth import MACRO_AMPLITUDE_PX, MICRO_AMPLITUDE_PX

__all__ = ["Recipe", "RECIPES", "recipe_for", "demo_config"]


@dataclass(frozen=True)
class Recipe:
    """How one demo is trained: `samples` synthetic clips (seed `data_seed`) over `subjects`
    pseudo-subjects, of which the `held_out` ones are never trained on."""

    arch: str
    samples: int
    data_seed: int
    amplitude_px: Tuple[float, float]
    lr: float
    subjects: int = 16
    held_out: Tuple[str, ...] = ("s14", "s15")
    epochs: int = 40
    batch: int = 64
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    #: Gaussian sensor noise added to every frame while training, in gray levels of 255.
    train_noise_gray: float = 1.5
    #: MMNet: flip onset and apex horizontally together (the motion stays consistent).
    pair_flip: bool = False
    #: MMNet: scale the position branch's final LayerNorm at init, so motion features lead.
    position_norm_scale: Optional[float] = None
    #: Seeds of the initial weights and of the batch order.
    init_seed: int = 0
    shuffle_seed: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


RECIPES: Dict[str, Recipe] = {
    "mmnet": Recipe(
        "mmnet", samples=8000, data_seed=7, amplitude_px=MICRO_AMPLITUDE_PX, lr=5e-4,
        pair_flip=True, position_norm_scale=0.05,
    ),
    # AFNet-M reads one frame, so its clips carry macro-expression amplitude.
    "afnet_m": Recipe("afnet_m", samples=6000, data_seed=11, amplitude_px=MACRO_AMPLITUDE_PX,
                      lr=1e-3),
    "famnet": Recipe("famnet", samples=6000, data_seed=11, amplitude_px=MICRO_AMPLITUDE_PX,
                     lr=1e-3),
    # The shipped bring-your-own example (calib.examples.ststnet): CPU minutes. Its input is
    # optical flow, which already carries the clips' sensor noise, so no noise is added to it;
    # no flip either (flipping flow negates u).
    "ststnet": Recipe("ststnet", samples=3000, data_seed=13, amplitude_px=MICRO_AMPLITUDE_PX,
                      lr=3e-3, epochs=60, weight_decay=1e-3, train_noise_gray=0.0),
}  # fmt: skip


def recipe_for(arch: str) -> Recipe:
    if arch not in RECIPES:
        raise ValueError(f"no demo recipe for {arch!r} (have: {', '.join(RECIPES)})")
    return RECIPES[arch]


def demo_config(arch: str):
    """The architecture config of the demo: FAMNet at base width 16 keeps the asset small;
    AFNet-M at its default size; MMNet has none (its variant is casme2-5)."""
    if arch == "famnet":
        from edge.models.famnet_spec import FAMNetConfig

        return FAMNetConfig(base_width=16)
    if arch == "afnet_m":
        from edge.models.afnet_m_spec import AFNetMConfig

        return AFNetMConfig()
    if arch in ("mmnet", "ststnet"):
        return None
    raise ValueError(f"no demo recipe for {arch!r}")
