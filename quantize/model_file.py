"""A bring-your-own model file (ONNX or `.pt2`) checked against its spec before any work.

Everything that would make the build fail later, or worse succeed with wrong data, is found
here and reported as a `ModelFileError` (CLI exit 2, nothing written) naming the spec field or
model input and the fix: input/output names, ranks, dtypes and static sizes; dynamic axes other
than the batch; for ONNX, an opset newer than the target's, and what the TensorRT lint for the
target rejects.

ONNX opsets: a file at the target's opset is used as it is; an older one is converted up with
`onnx.version_converter` (up-conversion is what the converter is built and tested for), and the
build then checks the converted file against the original with ONNX Runtime; a newer one is
refused, because down-conversion silently changes or drops operators.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from edge._lazy import require
from edge.errors import CheckpointError, UsageError
from edge.export import BATCH_AXIS, ExportResult, stamp_metadata, validate_onnx
from edge.spec import ModelSpec, TensorSpec
from edge.targets import TrtTarget

__all__ = [
    "MODEL_SUFFIXES",
    "ModelFileError",
    "ModelFile",
    "check_model_file",
    "onnx_from_file",
]

MODEL_SUFFIXES = (".onnx", ".pt2")
#: The oldest opset `onnx.version_converter` converts up from reliably.
MIN_CONVERTIBLE_OPSET = 7


class ModelFileError(UsageError):
    """The model file does not match its spec or cannot run on the target (exit code 2)."""


@dataclass
class ModelFile:
    """A checked model file: the ONNX at the target opset, or the loaded `.pt2` program."""

    path: Path
    kind: str  # "onnx" | "pt2"
    sha256: str
    opset: Optional[int] = None  # the ONNX file's own opset
    onnx_model: Any = None  # at the target opset, batch fixed (ONNX only)
    program: Any = None  # the ExportedProgram (.pt2 only)
    notes: List[str] = field(default_factory=list)

    def info(self) -> Dict[str, Any]:
        """The manifest's record of where the model came from."""
        return {
            # trained by its owner: "untrained" in mer-edge means its own seeded demos
            "trained": True,
            "seed": None,
            "checkpoint": None,
            "checkpoint_sha256": None,
            "model_file": self.path.name,
            "model_file_sha256": self.sha256,
            "model_format": self.kind,
            "model_file_opset": self.opset,
        }


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: Tuple[Any, ...]  # int, or a str/None for a dynamic axis
    dtype: str


def _error(spec_path: Path, model_path: Path, problem: str) -> ModelFileError:
    return ModelFileError(f"{model_path.name} vs {spec_path}: {problem}")


def _compare(
    spec_path: Path,
    model_path: Path,
    what: str,
    declared: Sequence[TensorSpec],
    found: Sequence[_Tensor],
    fixes: Dict[str, str],
) -> None:
    """Names, ranks, dtypes and static sizes of `found` must be those `declared`."""
    by_name = {t.name: t for t in found}
    declared_names = [t.name for t in declared]
    for i, tensor in enumerate(declared):
        if tensor.name not in by_name:
            raise _error(
                spec_path, model_path,
                f"{what}[{i}].name {tensor.name!r}: the model has no such {what[:-1]} (its "
                f"{what}: {', '.join(by_name) or 'none'}); use the model's name in the spec",
            )  # fmt: skip
    extra = [t.name for t in found if t.name not in declared_names]
    if extra:
        raise _error(
            spec_path, model_path,
            f"the model's {what[:-1]} {extra[0]!r} is not declared in the spec's {what}; "
            f"declare it (or remove it from the model)",
        )  # fmt: skip
    for i, tensor in enumerate(declared):
        actual = by_name[tensor.name]
        where = f"{what}[{i}] {tensor.name!r}"
        if actual.dtype != tensor.dtype:
            raise _error(
                spec_path, model_path,
                f"{where} is {actual.dtype} in the model; mer-edge feeds and reads "
                f"{tensor.dtype}: cast inside the model",
            )  # fmt: skip
        if len(actual.shape) != len(tensor.shape):
            raise _error(
                spec_path, model_path,
                f"{where} has rank {len(actual.shape)} {_fmt(actual.shape)} in the model, the "
                f"spec makes it rank {len(tensor.shape)} {_fmt(tensor.shape)}; "
                f"{fixes[tensor.name]}",
            )  # fmt: skip
        for axis, (dim, want) in enumerate(zip(actual.shape, tensor.shape)):
            if axis == 0:
                if isinstance(dim, int) and dim != 1:
                    raise _error(
                        spec_path, model_path,
                        f"{where} has a fixed batch of {dim}; export it with batch 1 or a "
                        "dynamic batch axis",
                    )  # fmt: skip
                continue
            if not isinstance(dim, int):
                raise _error(
                    spec_path, model_path,
                    f"{where} axis {axis} is dynamic ({dim or '?'}) in the model; only the "
                    "batch axis (0) may be: export it with a fixed size "
                    f"{_fmt(tensor.shape)}",
                )  # fmt: skip
            if dim != want:
                raise _error(
                    spec_path, model_path,
                    f"{where} is {_fmt(actual.shape)} in the model, the spec makes it "
                    f"{_fmt(tensor.shape)} (axis {axis}: {dim} vs {want}); "
                    f"{fixes[tensor.name]}",
                )  # fmt: skip


def _fmt(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) if d is not None else "?" for d in shape) + "]"


def _fixes(spec: ModelSpec) -> Dict[str, str]:
    """Per tensor, which spec field sets its shape."""
    fixes = {}
    for name, source in spec.preprocessing.input_sources(spec.input_names()):
        fix = "set preprocessing.size to the model's input side"
        if source == "clip":
            fix += " and clip_length to its frame count"
        if source.startswith("flow:"):
            fix += " (flow:image is 3 channels u, v, strain; flow:u/v/strain 1 channel)"
        fixes[name] = fix
    fixes[spec.outputs[0].name] = "list one class name per logit in classes"
    for tensor in spec.outputs[1:]:
        fixes[tensor.name] = "list one AU name per column in outputs.au_names"
    return fixes


def _batch_of(found: Sequence[_Tensor]) -> List[bool]:
    return [len(t.shape) > 0 and not isinstance(t.shape[0], int) for t in found]


# ---------------------------------------------------------------- ONNX


def _onnx_tensors(values: Sequence[Any], skip: set) -> List[_Tensor]:
    onnx = require("onnx", purpose="reading ONNX models")
    tensors = []
    for value in values:
        if value.name in skip:
            continue
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            tensors.append(_Tensor(value.name, (), kind or "unknown"))
            continue
        ttype = value.type.tensor_type
        try:
            dtype = str(onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type))
        except (KeyError, ValueError, TypeError):
            dtype = onnx.TensorProto.DataType.Name(ttype.elem_type).lower()
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in ttype.shape.dim
        )
        tensors.append(_Tensor(value.name, shape, dtype))
    return tensors


def _fix_batch(model: Any, dynamic: bool) -> None:
    """Batch axis of every graph input/output: 1, or the dynamic axis named `batch`."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims:
            continue
        if dynamic:
            dims[0].dim_param = BATCH_AXIS
        else:
            dims[0].dim_value = 1
    # Intermediate shapes may still name the old axis: shape inference recomputes them.
    del model.graph.value_info[:]


def _check_onnx(path: Path, spec_path: Path, spec: ModelSpec, trt: TrtTarget,
                dynamic_batch: bool) -> Tuple[Any, int, List[str]]:  # fmt: skip
    onnx = require("onnx", purpose="reading ONNX models")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # DecodeError, ValidationError: not an ONNX model
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path}: not a valid ONNX model: {detail}") from None
    initializers = {t.name for t in model.graph.initializer}
    inputs = _onnx_tensors(model.graph.input, initializers)
    outputs = _onnx_tensors(model.graph.output, set())
    fixes = _fixes(spec)
    _compare(spec_path, path, "inputs", spec.inputs, inputs, fixes)
    _compare(spec_path, path, "outputs", spec.outputs, outputs, fixes)
    dynamic = _batch_of(inputs)
    if dynamic_batch and not all(dynamic):
        static = [t.name for t, d in zip(inputs, dynamic) if not d]
        raise _error(
            spec_path, path,
            f"--dynamic-batch, but input {static[0]!r} has a fixed batch in the model; export "
            "it with a dynamic batch axis, or build without --dynamic-batch",
        )  # fmt: skip
    opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not opsets:
        raise ModelFileError(f"{path}: imports no default-domain (ai.onnx) opset")
    opset = int(opsets[0])
    notes = []
    if opset > trt.opset:
        raise ModelFileError(
            f"{path}: opset {opset} is newer than opset {trt.opset}, which mer-edge builds for "
            f"TensorRT {trt.name}; re-export the model with opset_version={trt.opset} "
            "(down-conversion is refused: it can change operators silently)"
        )
    if opset < trt.opset:
        if opset < MIN_CONVERTIBLE_OPSET:
            raise ModelFileError(
                f"{path}: opset {opset} is too old to convert; re-export with "
                f"opset_version={trt.opset}"
            )
        try:
            model = onnx.version_converter.convert_version(model, trt.opset)
        except Exception as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(
                f"{path}: converting opset {opset} to {trt.opset} failed ({detail}); "
                f"re-export the model with opset_version={trt.opset}"
            ) from None
        notes.append(f"converted from opset {opset} to {trt.opset} (onnx.version_converter)")
    _fix_batch(model, dynamic_batch)
    _lint(path, model, trt)
    return model, opset, notes


def _lint(path: Path, model: Any, trt: TrtTarget) -> None:
    from edge.lint import errors, lint_onnx

    bad = errors(lint_onnx(model, trt.name))
    if bad:
        raise ModelFileError(
            "{}: TensorRT {} would reject it: {}; replace those operators in the model, or pick "
            "the --target-trt that supports them".format(
                path, trt.name, "; ".join(str(f) for f in bad[:5])
            )
        )


# ---------------------------------------------------------------- torch.export


def _dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def _program_tensors(program: Any) -> Tuple[List[_Tensor], List[Any]]:
    """User inputs (named) and output values of an ExportedProgram's graph."""
    user_inputs = set(program.graph_signature.user_inputs)
    inputs, outputs = [], []
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            value = node.meta.get("val")
            shape = tuple(d if isinstance(d, int) else str(d) for d in getattr(value, "shape", ()))
            inputs.append(_Tensor(node.name, shape, _dtype_name(getattr(value, "dtype", "?"))))
        elif node.op == "output":
            outputs = [a.meta.get("val") if hasattr(a, "meta") else a for a in node.args[0]]
    return inputs, outputs


def _check_pt2(path: Path, spec_path: Path, spec: ModelSpec, dynamic_batch: bool) -> Any:
    from edge.models.exported import load_exported_program

    try:
        program = load_exported_program(path)
    except CheckpointError as exc:
        raise ModelFileError(str(exc)) from None
    inputs, values = _program_tensors(program)
    order = [t.name for t in inputs]
    if order != list(spec.input_names()) and sorted(order) == sorted(spec.input_names()):
        raise _error(
            spec_path, path,
            f"the program takes its inputs in the order {order}; list the spec's inputs in "
            "that order (a .pt2 program's inputs are positional)",
        )  # fmt: skip
    fixes = _fixes(spec)
    _compare(spec_path, path, "inputs", spec.inputs, inputs, fixes)
    # A program's outputs have no names: the spec names them in order, logits first.
    if len(values) != len(spec.outputs):
        raise _error(
            spec_path, path,
            f"the program returns {len(values)} output(s), the spec declares "
            f"{len(spec.outputs)} ({', '.join(spec.output_names())}); a .pt2 must return the "
            "class logits first, then the AU logits if outputs.au_logits is set",
        )  # fmt: skip
    outputs = [
        _Tensor(t.name, tuple(d if isinstance(d, int) else str(d) for d in getattr(v, "shape", ())),
                _dtype_name(getattr(v, "dtype", "?")))
        for t, v in zip(spec.outputs, values)
    ]  # fmt: skip
    _compare(spec_path, path, "outputs", spec.outputs, outputs, fixes)
    if dynamic_batch and not all(_batch_of(inputs)):
        raise _error(
            spec_path, path,
            "--dynamic-batch, but the program was exported with a fixed batch; export it with "
            "dynamic_shapes for axis 0, or build without --dynamic-batch",
        )  # fmt: skip
    return program


def check_model_file(
    path: Path, spec_path: Path, spec: ModelSpec, trt: TrtTarget, *, dynamic_batch: bool = False
) -> ModelFile:
    """Load `path` and check it against `spec` for `trt`, before any build work.

    Raises:
        ModelFileError: naming the field or input and the fix.
    """
    from edge.bundle import sha256_file

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelFileError(
            f"{path}: --model takes an ONNX file (.onnx) or a torch.export program (.pt2, "
            "torch.export.save); for a state_dict of a registered architecture use --arch and "
            "--checkpoint"
        )
    digest = sha256_file(path)
    if suffix == ".onnx":
        model, opset, notes = _check_onnx(path, spec_path, spec, trt, dynamic_batch)
        return ModelFile(path, "onnx", digest, opset=opset, onnx_model=model, notes=notes)
    program = _check_pt2(path, spec_path, spec, dynamic_batch)
    return ModelFile(path, "pt2", digest, program=program)


def onnx_from_file(
    source: ModelFile, spec: ModelSpec, out_path: Path, *, opset: int, dynamic_batch: bool
) -> ExportResult:
    """The export stage of an ONNX model: the checked model (at `opset`, batch fixed or named
    `batch`), validated like an export and stamped with the spec's labels."""
    onnx = require("onnx", purpose="writing ONNX models")
    model = source.onnx_model
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:  # InferenceError: shapes that do not fit the fixed batch
        raise ModelFileError(f"{source.path}: shape inference failed: {exc}") from None
    validate_onnx(model, opset=opset, where=str(source.path))
    stamp_metadata(model, spec)
    onnx.save(model, str(out_path))
    how = "as given" if source.opset == opset else f"converted from opset {source.opset}"
    return ExportResult(
        path=Path(out_path),
        opset=opset,
        dynamic_batch=dynamic_batch,
        nodes=len(model.graph.node),
        torch_version=None,
        onnx_version=onnx.__version__,
        exporter=f"user ONNX file {source.path.name} ({how})",
    )
