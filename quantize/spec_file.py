"""A bring-your-own model's spec file (YAML or JSON) -> `edge.spec.ModelSpec`.

`edge-build --model FILE --spec SPEC` deploys a network mer-edge has no code for; the spec file
says what the registered architectures say in `edge/models/*_spec.py`: which frame role feeds
each input, how frames are preprocessed, what the outputs mean, the class names. Every field is
checked here, before any work, and a problem is a `SpecFileError` (CLI exit 2) naming the file,
the field path and the fix; unknown keys are errors too, so a typo is never silently ignored.
The schema is documented in docs/byo.md.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from edge._lazy import require
from edge.errors import EdgeBuildError, UsageError
from edge.frames import CLIP_PREFIX, DEPTH_PREFIX, clip_roles
from edge.spec import (
    FLOW_IMAGE,
    FLOW_SOURCES,
    FlowSettings,
    ModelSpec,
    Preprocessing,
    TensorSpec,
    is_flow_source,
)

__all__ = [
    "SPEC_VERSION",
    "SpecFileError",
    "SpecFile",
    "load_spec_file",
    "parse_spec",
    "spec_file_dict",
]

SPEC_VERSION = 1
COLORS = ("RGB", "BGR")
#: The only layout `edge.preprocess` produces (channels first; a clip is [3, T, H, W]).
LAYOUTS = ("NCHW",)
DTYPES = ("float32",)
#: Colour frame roles an input can read directly (plus `clip:k`).
COLOUR_ROLES = ("onset", "apex")
MASK_SOURCES = ("mask:regions",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_PREP_KEYS = ("size", "color", "layout", "scale", "mean", "std")
#: Words users reach for that spelling distance does not find.
_SYNONYMS = {"role": "source", "frame": "source", "colour": "color", "labels": "classes",
             "class_names": "classes", "name": "model", "opset": "spec_version"}  # fmt: skip


class SpecFileError(UsageError):
    """A spec file that cannot describe a model: found before any work (exit code 2)."""


@dataclass(frozen=True)
class SpecFile:
    """A parsed spec file: the ModelSpec plus what only the build needs."""

    path: Path
    sha256: str
    spec: ModelSpec
    #: node names/prefixes forced out of INT8 (`precision.keep_out_of_int8`)
    keep_out_of_int8: Tuple[str, ...]
    #: the file's content as parsed, recorded in the manifest
    content: Dict[str, Any]

    @property
    def name(self) -> str:
        return self.spec.arch


class _Fields:
    """One mapping of the file: typed reads by key, then `done()` refuses what was not read."""

    def __init__(self, file: Path, path: str, data: Any, allowed: Sequence[str]) -> None:
        self.file, self.path, self.allowed = file, path, tuple(allowed)
        if not isinstance(data, Mapping):
            raise self.error(path, f"expected a mapping of {', '.join(allowed)}, got {_kind(data)}")
        self.data = dict(data)
        for key in self.data:
            if key not in self.allowed:
                close = [_SYNONYMS[key]] if _SYNONYMS.get(key) in self.allowed else []
                close = close or difflib.get_close_matches(str(key), self.allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else "remove it"
                raise self.error(
                    self.at(key), f"unknown key; {hint} (allowed: {', '.join(self.allowed)})"
                )

    def at(self, key: Any) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def error(self, where: str, problem: str) -> SpecFileError:
        return SpecFileError(f"{self.file}: {where}: {problem}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def text(self, key: str, default: Optional[str] = None, *, required: bool = False) -> str:
        if key not in self.data:
            if required:
                raise self.error(self.at(key), "missing (required)")
            return default  # type: ignore[return-value]
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error(self.at(key), f"expected a non-empty string, got {value!r}")
        return value.strip()

    def names(self, key: str, *, required: bool = False, min_count: int = 0) -> Tuple[str, ...]:
        if key not in self.data:
            if required:
                raise self.error(self.at(key), "missing (required): a list of names")
            return ()
        value = self.data[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(self.at(key), f"expected a list of non-empty strings, got {value!r}")
        names = tuple(v.strip() for v in value)
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise self.error(self.at(key), f"duplicate names {dupes}; each must be unique")
        if len(names) < min_count:
            raise self.error(self.at(key), f"expected at least {min_count} names, got {len(names)}")
        return names


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing"


def _number(fields: _Fields, key: str, value: Any, *, positive: bool = False) -> float:
    """A finite number; `1/255`-style fractions are accepted (YAML reads them as strings)."""
    where = fields.at(key)
    if isinstance(value, str) and re.fullmatch(r"\s*[\d.]+\s*/\s*[\d.]+\s*", value):
        top, bottom = (float(v) for v in value.split("/"))
        value = top / bottom if bottom else math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise fields.error(
            where, f"expected a finite number (or a fraction like 1/255), got {value!r}"
        )
    if positive and value <= 0:
        raise fields.error(where, f"must be > 0, got {value!r}")
    return float(value)


def _size(fields: _Fields, key: str, value: Any, *, minimum: int = 8) -> Tuple[int, int]:
    """`28` or `[height, width]`."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise fields.error(
            fields.at(key), f"expected a side or [height, width] in px, got {value!r}"
        )
    if min(value) < minimum:
        raise fields.error(fields.at(key), f"each side must be >= {minimum} px, got {value}")
    return int(value[0]), int(value[1])


def _triple(fields: _Fields, key: str, value: Any, *, positive: bool) -> Tuple[float, float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * 3
    if not isinstance(value, list) or len(value) != 3:
        raise fields.error(
            fields.at(key), f"expected 3 per-channel numbers (or one for all), got {value!r}"
        )
    return tuple(_number(fields, f"{key}[{i}]", v, positive=positive) for i, v in enumerate(value))  # type: ignore[return-value]


def _prep_value(fields: _Fields, key: str) -> Any:
    value = fields.raw(key)
    if key == "size":
        return _size(fields, key, value)
    if key in ("color", "layout"):
        choices = COLORS if key == "color" else LAYOUTS
        text = value.upper() if isinstance(value, str) else value
        if text not in choices:
            fix = (
                "; mer-edge feeds channels-first tensors: put a Transpose at the model's input"
                if key == "layout"
                else ""
            )
            raise fields.error(fields.at(key), f"{value!r} is not one of {', '.join(choices)}{fix}")
        return text
    if key == "scale":
        return _number(fields, key, value, positive=True)
    return _triple(fields, key, value, positive=key == "std")


# ---------------------------------------------------------------- sources


def _source_kind(source: str, clip_length: Optional[int]) -> Optional[str]:
    """'colour', 'clip', 'depth', 'mask', 'flow1', 'flow3', or None for an unknown source."""
    if source in COLOUR_ROLES:
        return "colour"
    if source == "clip":
        return "clip"
    if source.startswith(CLIP_PREFIX):
        k = source[len(CLIP_PREFIX) :]
        return "colour" if k.isdigit() else None
    if source.startswith(DEPTH_PREFIX):
        inner = _source_kind(source[len(DEPTH_PREFIX) :], clip_length)
        return "depth" if inner == "colour" else None
    if source in MASK_SOURCES:
        return "mask"
    if source in FLOW_SOURCES:
        return "flow3" if source == FLOW_IMAGE else "flow1"
    return None


SOURCE_HELP = (
    "onset, apex, clip (the stacked clip), clip:K (one clip frame), depth:ROLE, mask:regions, "
    + ", ".join(FLOW_SOURCES)
)


def _roles_for(sources: Sequence[str], clip_length: Optional[int]) -> Tuple[str, ...]:
    """The frame roles a sample stores, in the order the inputs first need them."""
    roles: List[str] = []

    def add(*new: str) -> None:
        roles.extend(r for r in new if r not in roles)

    for source in sources:
        base = source[len(DEPTH_PREFIX) :] if source.startswith(DEPTH_PREFIX) else source
        if is_flow_source(source):
            add("onset", "apex")
        elif source == "clip" or base.startswith(CLIP_PREFIX):
            add(*clip_roles(int(clip_length or 0)))
            if source != "clip" and source != base:
                add(source)
        elif source in MASK_SOURCES:
            continue
        else:
            add(source)
    return tuple(roles)


def _shape(kind: str, prep: Preprocessing, clip_length: Optional[int]) -> Tuple[int, ...]:
    height, width = prep.size
    channels = {"colour": 3, "clip": 3, "depth": 1, "mask": 1, "flow1": 1, "flow3": 3}[kind]
    if kind == "clip":
        return (1, channels, int(clip_length or 0), height, width)
    return (1, channels, height, width)


# ---------------------------------------------------------------- the file


TOP_KEYS = (
    "spec_version", "model", "variant", "description", "classes", "label_scheme",
    "preprocessing", "inputs", "clip_length", "flow", "depth", "outputs", "precision", "notes",
)  # fmt: skip
INPUT_KEYS = ("name", "source", "description", "dtype") + _PREP_KEYS
FLOW_KEYS = ("method", "size", "scale", "clip", "strain_scale", "strain_clip")
DEPTH_KEYS = ("mean", "std", "range_mm")
OUTPUT_KEYS = ("logits", "au_logits", "au_names")
PRECISION_KEYS = ("hints", "keep_out_of_int8")


def parse_spec(data: Any, file: Path) -> Tuple[ModelSpec, Tuple[str, ...]]:
    """Validate the parsed content of `file`; return the ModelSpec and the INT8 exclusions.

    Raises:
        SpecFileError: naming `file`, the field path and the fix.
    """
    top = _Fields(file, "", data, TOP_KEYS)
    version = top.raw("spec_version", SPEC_VERSION)
    if version != SPEC_VERSION:
        raise top.error(
            "spec_version", f"{version!r} is not supported; this mer-edge reads {SPEC_VERSION}"
        )
    name = top.text("model", required=True)
    if not _NAME.match(name):
        raise top.error("model", f"{name!r}: use letters, digits, '-', '_' or '.' (it names files)")
    classes = top.names("classes", required=True, min_count=2)

    clip_length: Optional[int] = None
    if top.has("clip_length"):
        value = top.raw("clip_length")
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            raise top.error("clip_length", f"expected a frame count >= 2, got {value!r}")
        clip_length = value

    prep_block = _Fields(file, "preprocessing", top.raw("preprocessing", {}), _PREP_KEYS)
    inputs = top.raw("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise top.error("inputs", "expected a non-empty list of {name, source, ...} entries")
    entries = [_Fields(file, f"inputs[{i}]", e, INPUT_KEYS) for i, e in enumerate(inputs)]

    # One preprocessing for every input (edge.preprocess): values given per input must agree.
    prep_values: Dict[str, Any] = {}
    prep_where: Dict[str, str] = {}
    for fields in [prep_block] + entries:
        for key in _PREP_KEYS:
            if not fields.has(key):
                continue
            value = _prep_value(fields, key)
            if key in prep_values and prep_values[key] != value:
                raise fields.error(
                    fields.at(key),
                    f"{value} differs from {prep_where[key]} = {prep_values[key]}: mer-edge "
                    "prepares every input with one preprocessing; make them equal (resize or "
                    "normalise inside the model where an input needs something else)",
                )
            prep_values[key] = value
            prep_where[key] = fields.at(key)
    if "size" not in prep_values:
        raise top.error(
            "preprocessing.size", "missing: the input side in px, e.g. 28 or [224, 224]"
        )

    input_names: List[str] = []
    sources: List[str] = []
    kinds: List[str] = []
    descriptions: List[str] = []
    for fields in entries:
        input_name = fields.text("name", required=True)
        if input_name in input_names:
            raise fields.error(fields.at("name"), f"{input_name!r} is declared twice")
        source = fields.text("source", required=True)
        kind = _source_kind(source, clip_length)
        if kind is None:
            raise fields.error(
                fields.at("source"), f"unknown frame role {source!r}; one of: {SOURCE_HELP}"
            )
        uses_clip = source == "clip" or CLIP_PREFIX in source
        if uses_clip and clip_length is None:
            raise top.error(
                "clip_length",
                f"missing: {fields.at('source')} reads {source!r}; say how many frames the clip "
                "has (evenly spaced from onset to apex)",
            )
        if uses_clip and source != "clip":
            k = int(source.rsplit(":", 1)[1])
            if k >= int(clip_length or 0):
                raise fields.error(
                    fields.at("source"), f"{source!r} is outside a clip of {clip_length} frames"
                )
        dtype = fields.text("dtype", "float32")
        if dtype not in DTYPES:
            raise fields.error(
                fields.at("dtype"),
                f"{dtype!r}: mer-edge feeds float32; cast inside the model if it needs another type",
            )
        input_names.append(input_name)
        sources.append(source)
        kinds.append(kind)
        descriptions.append(fields.text("description", "") or f"{source}")

    flow: Optional[FlowSettings] = None
    reads_flow = any(is_flow_source(s) for s in sources)
    if top.has("flow") and not reads_flow:
        raise top.error("flow", "given, but no input reads a flow:* source; remove it")
    if reads_flow:
        if not top.has("flow"):
            raise top.error(
                "flow",
                "missing: an input reads optical flow; declare at least flow.method "
                "(e.g. farneback or dis) and flow.size",
            )
        flow = _flow(_Fields(file, "flow", top.raw("flow"), FLOW_KEYS))

    depth = _Fields(file, "depth", top.raw("depth", {}), DEPTH_KEYS)
    if top.has("depth") and "depth" not in kinds:
        raise top.error("depth", "given, but no input reads a depth:* source; remove it")
    prep = Preprocessing(
        size=prep_values["size"],
        color=prep_values.get("color", "RGB"),
        scale=prep_values.get("scale", 1.0 / 255.0),
        mean=prep_values.get("mean", (0.485, 0.456, 0.406)),
        std=prep_values.get("std", (0.229, 0.224, 0.225)),
        layout=prep_values.get("layout", "NCHW"),
        frames=_roles_for(sources, clip_length),
        feeds=tuple(zip(input_names, sources)),
        depth_mean=_number(depth, "mean", depth.raw("mean", 0.5)),
        depth_std=_number(depth, "std", depth.raw("std", 0.5), positive=True),
        depth_range_mm=_number(depth, "range_mm", depth.raw("range_mm", 100.0), positive=True),
        flow=flow,
    )
    tensors = tuple(
        TensorSpec(n, _shape(k, prep, clip_length), "float32", d)
        for n, k, d in zip(input_names, kinds, descriptions)
    )

    outs = _Fields(file, "outputs", top.raw("outputs"), OUTPUT_KEYS)
    logits = outs.text("logits", required=True)
    outputs = [TensorSpec(logits, (1, len(classes)), "float32", "class logits")]
    au_names = outs.names("au_names", min_count=1)
    if outs.has("au_logits"):
        au = outs.text("au_logits")
        if au == logits:
            raise outs.error(outs.at("au_logits"), "must differ from outputs.logits")
        if not au_names:
            raise outs.error(outs.at("au_names"), "missing: name the AU logits' columns")
        outputs.append(
            TensorSpec(au, (1, len(au_names)), "float32",
                       "action-unit logits ({}); sigmoid > 0.5 = present".format(", ".join(au_names)))
        )  # fmt: skip
    elif au_names:
        raise outs.error(outs.at("au_names"), "given without outputs.au_logits; name that output")
    clash = set(input_names) & {t.name for t in outputs}
    if clash:
        raise outs.error(outs.path, f"{sorted(clash)} named both as an input and an output")

    precision = _Fields(file, "precision", top.raw("precision", {}), PRECISION_KEYS)
    notes = top.names("notes")
    description = top.text("description", "")
    spec = ModelSpec(
        arch=name,
        variant=top.text("variant", "custom"),
        inputs=tensors,
        outputs=tuple(outputs),
        preprocessing=prep,
        class_names=classes,
        protocol=top.text("label_scheme", ""),
        precision_hints=precision.names("hints"),
        notes=((description,) if description else ()) + notes,
        au_names=au_names,
    )
    return spec, precision.names("keep_out_of_int8")


def _flow(fields: _Fields) -> FlowSettings:
    method = fields.text("method", required=True)
    known = _flow_methods()
    if known and method not in known:
        raise fields.error(fields.at("method"), f"{method!r} is not one of {', '.join(known)}")
    if not fields.has("size"):
        raise fields.error(fields.at("size"), "missing: the side flow is computed at, e.g. 112")
    values: Dict[str, Any] = {"method": method, "size": _size(fields, "size", fields.raw("size"))}
    for key, positive in (("scale", True), ("clip", False), ("strain_scale", True),
                          ("strain_clip", False)):  # fmt: skip
        if fields.has(key):
            value = _number(fields, key, fields.raw(key), positive=positive)
            if value < 0:
                raise fields.error(fields.at(key), f"must be >= 0 (0 = no clipping), got {value}")
            values[key] = value
    try:
        return FlowSettings(**values)
    except EdgeBuildError as exc:
        raise fields.error(fields.path, str(exc)) from None


def _flow_methods() -> Tuple[str, ...]:
    """The optical-flow methods `edge.flow` registers here (TV-L1 only with opencv-contrib)."""
    try:
        from edge.flow import methods
    except ImportError:  # edge.flow not importable: FlowSettings' own checks still run
        return ()
    return tuple(methods())


def load_spec_file(path: Path) -> SpecFile:
    """Read and validate a `.yaml`/`.yml`/`.json` spec file.

    Raises:
        SpecFileError: unreadable or malformed file, or any invalid field.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecFileError(f"{path}: no such spec file")
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecFileError(f"{path}: not valid JSON: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        yaml = require("yaml", purpose="reading YAML spec files")
        try:
            data = yaml.safe_load(text)  # safe_load: plain data, never Python objects
        except yaml.YAMLError as exc:
            raise SpecFileError(f"{path}: not valid YAML: {exc}") from None
    else:
        raise SpecFileError(f"{path}: a spec file ends in .yaml, .yml or .json")
    spec, keep_out = parse_spec(data, path)
    return SpecFile(
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        spec=spec,
        keep_out_of_int8=keep_out,
        content=json.loads(json.dumps(data, default=str)),
    )


def spec_file_dict(spec: ModelSpec) -> Dict[str, Any]:
    """The spec file (as plain data, ready for `yaml.safe_dump` or `json.dumps`) that parses
    back into `spec`'s interface: how a model's code writes the spec it ships with."""
    prep = spec.preprocessing
    data: Dict[str, Any] = {"spec_version": SPEC_VERSION, "model": spec.arch}
    if spec.variant != "custom":
        data["variant"] = spec.variant
    data["classes"] = list(spec.class_names)
    if spec.protocol:
        data["label_scheme"] = spec.protocol
    data["preprocessing"] = {
        "size": list(prep.size), "color": prep.color, "layout": prep.layout,
        "scale": prep.scale, "mean": list(prep.mean), "std": list(prep.std),
    }  # fmt: skip
    sources = prep.input_sources(spec.input_names())
    data["inputs"] = [
        {"name": name, "source": source, **({"description": t.description} if t.description else {})}
        for (name, source), t in zip(sources, spec.inputs)
    ]  # fmt: skip
    clip = [r for r in prep.frames if r.startswith(CLIP_PREFIX)]
    if clip:
        data["clip_length"] = len(clip)
    if prep.flow is not None:
        data["flow"] = prep.flow.to_dict()
    if any(s.startswith(DEPTH_PREFIX) for _, s in sources):
        data["depth"] = {"mean": prep.depth_mean, "std": prep.depth_std,
                         "range_mm": prep.depth_range_mm}  # fmt: skip
    data["outputs"] = {"logits": spec.outputs[0].name}
    if len(spec.outputs) > 1:
        data["outputs"]["au_logits"] = spec.outputs[1].name
        data["outputs"]["au_names"] = list(spec.au_names)
    if spec.precision_hints:
        data["precision"] = {"hints": list(spec.precision_hints)}
    if spec.notes:
        data["notes"] = list(spec.notes)
    return data
