"""Architecture registry: name -> loader, imported on demand so `edge.models` needs no torch.

Each architecture module provides `load(path, class_names=None) -> LoadedModel` and
`build_demo(seed) -> LoadedModel`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Tuple

from edge._lazy import require
from edge.errors import EdgeBuildError

__all__ = ["ARCHITECTURES", "architecture", "architecture_names"]

#: arch name -> module implementing it.
ARCHITECTURES = {
    "mmnet": "edge.models.mmnet_arch",
    "afnet_m": "edge.models.afnet_m_arch",
    "famnet": "edge.models.famnet_arch",
}


def architecture_names() -> Tuple[str, ...]:
    return tuple(sorted(ARCHITECTURES))


def architecture(name: str) -> ModuleType:
    """The module implementing `name` (imports torch)."""
    if name not in ARCHITECTURES:
        raise EdgeBuildError(
            "unknown architecture {!r}; available: {}".format(name, ", ".join(architecture_names()))
        )
    require("torch", purpose=f"building {name} models")
    return importlib.import_module(ARCHITECTURES[name])
