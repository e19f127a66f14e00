"""TensorRT targets: one table decides the ONNX opset and what each version accepts.

TensorRT 8.5 (JetPack 5) parses opsets up to 17 but not `LayerNormalization`, so it gets opset 16
where LayerNorm is decomposed; 8.6 and later parse LayerNormalization and get opset 17.
See ../shared/facts/tensorrt.md and ARCHITECTURE.md section 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from edge.errors import EdgeBuildError

__all__ = ["TrtTarget", "TARGETS", "DEFAULT_TARGET", "target"]


@dataclass(frozen=True)
class TrtTarget:
    name: str
    opset: int
    jetpack: str
    devices: Tuple[str, ...]
    #: the builder has INT8/FP16 flags: an INT8 engine's non-INT8 layers may run in FP16 by flag
    #: (edge.engine.plan sets both); TensorRT 11 is strongly typed and reads the ONNX's types
    precision_flags: bool = True


TARGETS = {
    "8.5": TrtTarget("8.5", 16, "5.1.x", ("Xavier", "Orin")),
    "8.6": TrtTarget("8.6", 17, "6.0", ("Orin",)),
    "10": TrtTarget("10", 17, "6.1-7.2", ("Orin", "Thor")),
    "11": TrtTarget("11", 17, ">=7.2.2", ("AGX Orin", "Thor"), precision_flags=False),
}

#: JetPack 6 (TensorRT 10.3) is the most common Orin install today.
DEFAULT_TARGET = "10"


def target(name: str) -> TrtTarget:
    if name not in TARGETS:
        raise EdgeBuildError(
            "unknown TensorRT target {!r}; choose one of {}".format(name, ", ".join(TARGETS))
        )
    return TARGETS[name]
