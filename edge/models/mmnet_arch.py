"""Registry adapter for MMNet: the entry points `edge.models.architecture` expects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Union

from edge.models.mmnet import LoadedModel, build_mmnet, load_mmnet

__all__ = ["load", "build_demo", "build_seeded", "DEMO_CHECKPOINT"]

#: Trained by `python -m calib.train --arch mmnet` on synthetic clips (see its model card).
DEMO_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "mmnet_demo.safetensors"


def load(path: Union[str, Path], class_names: Optional[Sequence[str]] = None) -> LoadedModel:
    return load_mmnet(path, class_names=class_names)


def build_seeded(seed: int = 0) -> LoadedModel:
    """An untrained MMNet from a seed (reproduces bundles built without the demo asset)."""
    return build_mmnet("casme2-5", seed=seed)


def build_demo(checkpoint: Path = DEMO_CHECKPOINT) -> LoadedModel:
    """The shipped demo model; a seeded, untrained MMNet (clearly labelled) when it is absent."""
    if not checkpoint.is_file():
        return build_seeded(0)
    loaded = load_mmnet(checkpoint)
    card = checkpoint.with_suffix(".json")
    loaded.info["demo_card"] = (
        json.loads(card.read_text(encoding="utf-8")) if card.is_file() else None
    )
    return loaded
