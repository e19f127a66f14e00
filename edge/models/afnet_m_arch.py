"""Registry adapter for AFNet-M: the entry points `edge.models.architecture` expects.

No published AFNet-M weights exist. The demo was trained on synthetic clips by
`python -m calib.train --arch afnet_m` (its model card states the held-out accuracy); without
that asset it is a seeded, untrained model, labelled `trained: False`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

from edge.models.afnet_m import AFNetM
from edge.models.afnet_m_spec import ARCH, AFNetMConfig, afnet_m_spec
from edge.models.loaded import (
    LoadedModel,
    build_configured,
    load_configured,
    load_demo,
    save_configured,
)

__all__ = ["load", "build_demo", "build_seeded", "save", "DEMO_CHECKPOINT"]

#: Trained by `python -m calib.train --arch afnet_m` on synthetic clips (see its model card).
DEMO_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "afnet_m_demo.safetensors"


def load(
    path: Union[str, Path],
    class_names: Optional[Sequence[str]] = None,
    *,
    mask_mode: Optional[str] = None,
) -> LoadedModel:
    """Load an AFNet-M checkpoint; `mask_mode` may switch between "constant" and "input"
    (the mask is not part of the weights)."""
    return load_configured(
        path,
        arch=ARCH,
        default=AFNetMConfig(),
        build=AFNetM,
        spec_for=afnet_m_spec,
        class_names=class_names,
        overrides={"mask_mode": mask_mode} if mask_mode is not None else None,
    )


def build_seeded(seed: int = 0, config: Optional[AFNetMConfig] = None) -> LoadedModel:
    """An untrained AFNet-M from a seed (default config unless one is given)."""
    return build_configured(config or AFNetMConfig(), AFNetM, afnet_m_spec, seed)


def build_demo(checkpoint: Path = DEMO_CHECKPOINT) -> LoadedModel:
    """The shipped demo (`python -m calib.train --arch afnet_m`: trained on synthetic clips,
    see its model card); the seeded untrained default model when the asset is absent."""
    return load_demo(checkpoint, load, lambda: build_seeded(0))


def save(model_or_loaded: Any, path: Union[str, Path]) -> Path:
    """Write an AFNetM (or its LoadedModel) as `.safetensors` with mer-edge metadata."""
    return save_configured(model_or_loaded, path, arch=ARCH, config_type=AFNetMConfig)
