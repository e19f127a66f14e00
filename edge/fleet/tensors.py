"""How a bundle's tensors look to Triton: the same names and dtypes, the batch axis split off.

Triton describes a batching model by `max_batch_size > 0` and per-sample `dims`; a model
without a batch axis has `max_batch_size: 0` and its full shape. `edge-serve` and
`edge-export triton` both derive their tensors here, so the server and the repository agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Mapping, Sequence, Tuple, Union

from edge.errors import EdgeBuildError
from edge.pipeline.classifier import AU_OUTPUT
from edge.spec import ModelSpec, TensorSpec

__all__ = [
    "TritonTensor",
    "TRITON_TYPES",
    "by_name",
    "has_batch_axis",
    "served_outputs",
    "triton_tensors",
]

#: numpy dtype name -> Triton's config data type (model_config.proto `DataType`).
TRITON_TYPES = {
    "float32": "TYPE_FP32",
    "float16": "TYPE_FP16",
    "float64": "TYPE_FP64",
    "int8": "TYPE_INT8",
    "uint8": "TYPE_UINT8",
    "int32": "TYPE_INT32",
    "int64": "TYPE_INT64",
    "bool": "TYPE_BOOL",
}

Dim = Union[int, str, None]


@dataclass(frozen=True)
class TritonTensor:
    """One input or output as Triton sees it: `dims` excludes the batch axis when batching."""

    name: str
    dtype: str
    dims: Tuple[int, ...]

    @property
    def triton_type(self) -> str:
        if self.dtype not in TRITON_TYPES:
            raise EdgeBuildError(f"tensor {self.name!r}: dtype {self.dtype} has no Triton type")
        return TRITON_TYPES[self.dtype]


def _is_dynamic(dim: Dim) -> bool:
    return not isinstance(dim, int) or dim < 0


def has_batch_axis(tensors: Iterable[TensorSpec]) -> bool:
    """True when every tensor's first axis is symbolic (`edge-build --dynamic-batch`)."""
    shapes = [tuple(t.shape) for t in tensors]
    return bool(shapes) and all(len(s) > 0 and _is_dynamic(s[0]) for s in shapes)


def served_outputs(spec: ModelSpec) -> List[str]:
    """The class logits, plus the AU logits where the model has them."""
    names = [spec.outputs[0].name]
    if any(o.name == AU_OUTPUT for o in spec.outputs):
        names.append(AU_OUTPUT)
    return names


def triton_tensors(tensors: Sequence[TensorSpec], *, batching: bool) -> List[TritonTensor]:
    """Triton's view of `tensors`; with `batching` the (symbolic) first axis is dropped.

    Raises:
        EdgeBuildError: a non-batch axis is dynamic (Triton would need -1 there; bundles
            never export one, so it means a foreign model).
    """
    result = []
    for tensor in tensors:
        shape = tuple(tensor.shape)
        dims = shape[1:] if batching else shape
        if any(_is_dynamic(d) for d in dims):
            raise EdgeBuildError(
                f"tensor {tensor.name!r} has shape {list(shape)}: only the batch axis may be dynamic"
            )
        result.append(TritonTensor(tensor.name, str(tensor.dtype), tuple(int(d) for d in dims)))
    return result


def by_name(tensors: Mapping[str, TensorSpec], names: Sequence[str]) -> List[TensorSpec]:
    """`tensors` restricted to `names`, in that order; an absent name is an error."""
    missing = [n for n in names if n not in tensors]
    if missing:
        raise EdgeBuildError(f"the model has no tensor(s) {missing}; it has {sorted(tensors)}")
    return [tensors[n] for n in names]
