"""Registry adapter for MMNet: the two entry points `edge.models.architecture` expects."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from edge.models.mmnet import LoadedModel, build_mmnet, load_mmnet

__all__ = ["load", "build_demo"]


def load(path: Union[str, Path], class_names: Optional[Sequence[str]] = None) -> LoadedModel:
    return load_mmnet(path, class_names=class_names)


def build_demo(seed: int = 0) -> LoadedModel:
    return build_mmnet("casme2-5", seed=seed)
