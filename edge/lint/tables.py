"""What each TensorRT release's ONNX parser accepts, as data with its source.

Opset ranges come from ../shared/facts/tensorrt.md section 1.8. The unsupported-operator lists
are the operators onnx-tensorrt's `docs/operators.md` marks unsupported on the release branches
(release/8.5, 8.6, 10.x, 11.0); they were transcribed, not machine-extracted, and list only
operators unsupported on every branch, plus LayerNormalization on 8.5 (NVIDIA/TensorRT #3656).
An operator missing from a list is not a promise that TensorRT parses it: the device build is
the final check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Tuple

from edge.errors import EdgeBuildError

__all__ = ["ReleaseRules", "RELEASES", "FAMILIES", "releases_for"]


@dataclass(frozen=True)
class ReleaseRules:
    release: str
    opset_min: Optional[int]  # None: not documented, not checked
    opset_max: int
    unsupported: FrozenSet[str]
    source: str


_OPERATORS_MD = "onnx-tensorrt docs/operators.md ({}), transcribed"

#: Unsupported on every release branch we target (no importer in onnx-tensorrt).
_NEVER = frozenset(
    {
        "Bernoulli",
        "BitShift",
        "ConcatFromSequence",
        "ConvInteger",
        "MatMulInteger",
        "Multinomial",
        "Optional",
        "OptionalGetElement",
        "OptionalHasElement",
        "QLinearConv",
        "QLinearMatMul",
        "SequenceAt",
        "SequenceConstruct",
        "SequenceEmpty",
        "SequenceErase",
        "SequenceInsert",
        "SequenceLength",
        "SequenceMap",
        "SplitToSequence",
        "StringNormalizer",
        "TfIdfVectorizer",
    }
)


def _rules(release: str, opset_min: Optional[int], opset_max: int, extra=(), note: str = ""):
    source = _OPERATORS_MD.format("release/" + release) + "; opsets: tensorrt.md 1.8" + note
    return ReleaseRules(release, opset_min, opset_max, _NEVER | frozenset(extra), source)


_TEN = " (10.0 range 9-20; the exact ceiling of later 10.x is unverified)"

RELEASES: Dict[str, ReleaseRules] = {
    "8.5": _rules("8.5", None, 17, extra=("LayerNormalization",)),
    "8.6": _rules("8.6", None, 17),
    "10.3": _rules("10.3", 9, 20, note=_TEN),
    "10.13": _rules("10.13", 9, 20, note=_TEN),
    "10.14": _rules("10.14", 9, 20, note=_TEN),
    "10.15": _rules("10.15", 9, 20, note=_TEN),
    "10.16": _rules("10.16", 9, 20, note=_TEN),
    "11.4": _rules("11.4", None, 25),
}

#: `edge-build --target-trt` names -> the releases a bundle for that target must pass.
FAMILIES: Dict[str, Tuple[str, ...]] = {
    "8.5": ("8.5",),
    "8.6": ("8.6",),
    "10": ("10.3", "10.13", "10.14", "10.15", "10.16"),
    "11": ("11.4",),
}


def releases_for(target: str) -> List[str]:
    """'10' -> every 10.x release; '10.3' -> ['10.3']."""
    if target in FAMILIES:
        return list(FAMILIES[target])
    if target in RELEASES:
        return [target]
    raise EdgeBuildError(
        "unknown lint target TensorRT {!r}; choose one of {}".format(
            target, ", ".join(list(FAMILIES) + [r for r in RELEASES if r not in FAMILIES])
        )
    )
