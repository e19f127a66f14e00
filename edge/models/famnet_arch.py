"""Registry adapter for FAMNet: the entry points `edge.models.architecture` expects.

No published FAMNet weights exist. The demo (base width 16) was trained on synthetic clips by
`python -m calib.train --arch famnet` (its model card states the held-out accuracy); without
that asset it is the seeded, untrained default model, labelled `trained: False`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

from edge.models.famnet import FAMNet
from edge.models.famnet_spec import ARCH, FAMNetConfig, famnet_spec
from edge.models.loaded import (
    LoadedModel,
    build_configured,
    load_configured,
    load_demo,
    save_configured,
)

__all__ = ["load", "build_demo", "build_seeded", "save", "DEMO_CHECKPOINT"]

#: Trained by `python -m calib.train --arch famnet` on synthetic clips (see its model card).
DEMO_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "famnet_demo.safetensors"


def load(path: Union[str, Path], class_names: Optional[Sequence[str]] = None) -> LoadedModel:
    """Load a FAMNet checkpoint (config from its metadata, else the default config)."""
    return load_configured(
        path,
        arch=ARCH,
        default=FAMNetConfig(),
        build=FAMNet,
        spec_for=famnet_spec,
        class_names=class_names,
    )


def build_seeded(seed: int = 0, config: Optional[FAMNetConfig] = None) -> LoadedModel:
    """An untrained FAMNet from a seed (default config unless one is given)."""
    return build_configured(config or FAMNetConfig(), FAMNet, famnet_spec, seed)


def build_demo(checkpoint: Path = DEMO_CHECKPOINT) -> LoadedModel:
    """The shipped demo (`python -m calib.train --arch famnet`: trained on synthetic clips,
    see its model card); the seeded untrained default model when the asset is absent."""
    return load_demo(checkpoint, load, lambda: build_seeded(0))


def save(model_or_loaded: Any, path: Union[str, Path]) -> Path:
    """Write a FAMNet (or its LoadedModel) as `.safetensors` with mer-edge metadata."""
    return save_configured(model_or_loaded, path, arch=ARCH, config_type=FAMNetConfig)
