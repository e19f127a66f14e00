"""The bundle: the one directory that crosses from host to device.

`manifest.json` is the source of truth; every file it names carries its sha256 and size, so the
device can tell a complete, unaltered bundle from a half-copied one before it builds anything.
Bundles are written into a staging directory beside the target and renamed into place, so a
failed build never leaves a partial bundle behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

from edge.errors import BundleError
from edge.spec import ModelSpec

__all__ = [
    "SCHEMA_VERSION",
    "MANIFEST_NAME",
    "FP32_FILE",
    "REFERENCE_FILE",
    "VALIDATION_FILE",
    "VALIDATION_FILES",
    "VALIDATION_SECTIONS",
    "REDUCED_FILES",
    "POLYGRAPHY_INPUTS_FILE",
    "POLYGRAPHY_OUTPUTS_FILE",
    "model_file",
    "ModelEntry",
    "Manifest",
    "Bundle",
    "sha256_file",
    "file_entry",
    "staged_directory",
    "write_manifest",
]

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
#: The files edge-build writes; device code reads them through the manifest, never by guessing.
FP32_FILE = "model.fp32.onnx"
REFERENCE_FILE = "reference.npz"
VALIDATION_FILE = "validation.npz"
#: Validation tiers (`quantize.data`): tier -> its file, and the manifest section describing it.
VALIDATION_FILES = {"standard": VALIDATION_FILE, "hard": "validation_hard.npz"}
VALIDATION_SECTIONS = {"standard": "validation", "hard": "validation_hard"}
REDUCED_FILES = {"fp16": "model.fp16.onnx", "int8": "model.int8.qdq.onnx"}
#: The reference inputs and FP32 outputs in Polygraphy's JSON formats (`polygraphy run`).
POLYGRAPHY_INPUTS_FILE = "polygraphy_inputs.json"
POLYGRAPHY_OUTPUTS_FILE = "polygraphy_outputs.json"

PathLike = Union[str, "os.PathLike[str]"]


def sha256_file(path: PathLike, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: PathLike) -> Dict[str, Any]:
    """The manifest's record of one file."""
    return {"sha256": sha256_file(path), "bytes": os.path.getsize(path)}


def model_file(precision: str) -> str:
    """The file name of the ONNX model for `precision` in a bundle edge-build writes."""
    return FP32_FILE if precision == "fp32" else REDUCED_FILES[precision]


@dataclass
class ModelEntry:
    """One precision's model in `manifest["models"]`.

    `details` keeps every other field as written (nodes, ops, measured_vs_fp32, lint, ...), so
    the FP16/INT8 stages can add fields without a schema change; the ones the runtime reads have
    typed accessors. `quantization` is this precision's own record (MAC shares per precision,
    groups kept out of INT8, ...), free-form by design.
    """

    file: str
    precision: str
    details: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(
        cls, precision: str, data: Mapping[str, Any], source: str = "manifest"
    ) -> ModelEntry:
        if not isinstance(data, Mapping) or not isinstance(data.get("file"), str):
            raise BundleError(f"{source}: models[{precision!r}] names no file")
        details = {k: v for k, v in data.items() if k not in ("file", "precision")}
        return cls(str(data["file"]), str(data.get("precision", precision)), details)

    def to_dict(self) -> Dict[str, Any]:
        return {"file": self.file, "precision": self.precision, **self.details}

    @property
    def tolerance(self) -> Optional[float]:
        """The parity tolerance against the stored reference logits, where one is declared."""
        value = self.details.get("tolerance")
        return None if value is None else float(value)

    @property
    def measured_vs_fp32(self) -> Optional[Dict[str, Any]]:
        return self.details.get("measured_vs_fp32")

    @property
    def quantization(self) -> Optional[Dict[str, Any]]:
        return self.details.get("quantization")

    @quantization.setter
    def quantization(self, value: Optional[Mapping[str, Any]]) -> None:
        self.details["quantization"] = None if value is None else dict(value)


#: Top-level keys the Manifest types itself; every other section is kept as written.
_TYPED = ("models", "engines", "files", "schema_version")


@dataclass
class Manifest:
    """`manifest.json`: what the bundle holds, how it was made, and the sha256 of every file.

    What the runtime relies on (the models per precision, the engines, the file table, the
    schema version) is typed; the sections reports copy (producer, model, export, parity,
    validation, quantization, lint, ...) stay JSON objects in `sections`, in their order, so a
    newer writer's fields survive a rewrite by an older reader. `write` and `save` are the only
    code that writes a manifest.
    """

    models: Dict[str, ModelEntry] = field(default_factory=dict)
    engines: List[Dict[str, Any]] = field(default_factory=list)
    files: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    sections: Dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "manifest") -> Manifest:
        """A manifest from its JSON object (schema 1, as every mer-edge release wrote it)."""
        if not isinstance(data, Mapping):
            raise BundleError(f"{source}: a manifest is a JSON object")
        models = data.get("models") or {}
        engines = data.get("engines") or []
        files = data.get("files") or {}
        if not isinstance(models, Mapping) or not isinstance(files, Mapping):
            raise BundleError(f"{source}: manifest fields 'models' and 'files' must be objects")
        if not isinstance(engines, list):
            raise BundleError(f"{source}: manifest field 'engines' must be a list")
        return cls(
            models={p: ModelEntry.from_dict(p, e, source) for p, e in models.items()},
            engines=[dict(e) for e in engines],
            files={name: dict(entry) for name, entry in files.items()},
            # "models"/"engines" keep their place in the key order; their values live above
            sections={
                k: (None if k in _TYPED else v)
                for k, v in data.items()
                if k not in ("files", "schema_version")
            },  # fmt: skip
            schema_version=int(data.get("schema_version", SCHEMA_VERSION)),
        )

    @classmethod
    def read(cls, path: PathLike) -> Manifest:
        """Read and check `manifest.json`; `BundleError` names the file and the problem."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"{path}: unreadable manifest: {exc}") from exc
        if not isinstance(data, dict) or "files" not in data:
            raise BundleError(f"{path}: manifest has no 'files' table")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"{path}: schema_version {version!r} is not supported (this mer-edge reads {SCHEMA_VERSION})"
            )
        return cls.from_dict(data, str(path))

    def to_dict(self) -> Dict[str, Any]:
        out = dict(self.sections)
        out["models"] = {p: e.to_dict() for p, e in self.models.items()}
        out["engines"] = [dict(e) for e in self.engines]
        out["schema_version"] = self.schema_version
        out["files"] = {name: dict(entry) for name, entry in self.files.items()}
        return out

    def section(self, name: str) -> Optional[Dict[str, Any]]:
        """A report section (`producer`, `parity`, `validation`, ...); None when absent."""
        if name in _TYPED:
            raise KeyError(f"{name!r} is typed: use the Manifest attribute")
        return self.sections.get(name)

    @property
    def model(self) -> Dict[str, Any]:
        return self.sections.get("model") or {}

    @property
    def trained(self) -> bool:
        return bool(self.model.get("trained"))

    @property
    def target_tensorrt(self) -> Optional[str]:
        return (self.sections.get("target") or {}).get("tensorrt")

    def add_engine(self, entry: Mapping[str, Any]) -> None:
        """Record an engine; one with the same file name (the same key) is replaced."""
        self.engines = [e for e in self.engines if e.get("file") != entry["file"]]
        self.engines.append(dict(entry))

    def write(self, directory: PathLike) -> Path:
        """Hash every file in `directory` into `files`, then save: the manifest of a new bundle."""
        directory = Path(directory)
        self.files = {
            path.relative_to(directory).as_posix(): file_entry(path)
            for path in sorted(directory.rglob("*"))
            if path.is_file() and path.name != MANIFEST_NAME
        }
        return self.save(directory)

    def save(self, directory: PathLike) -> Path:
        """Write `manifest.json` atomically (temporary file, then rename), as it stands."""
        self.schema_version = SCHEMA_VERSION
        target = Path(directory) / MANIFEST_NAME
        partial = target.with_name("." + target.name + ".partial")
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
        return target


def write_manifest(directory: PathLike, manifest: Union[Manifest, Mapping[str, Any]]) -> Path:
    """Hash every file in `directory` into the manifest's `files` and write `manifest.json`."""
    if not isinstance(manifest, Manifest):
        manifest = Manifest.from_dict(manifest, str(Path(directory) / MANIFEST_NAME))
    return manifest.write(directory)


@contextlib.contextmanager
def staged_directory(target: PathLike, *, marker: str = MANIFEST_NAME) -> Iterator[Path]:
    """Yield an empty staging directory that becomes `target` only if the block succeeds.

    An existing `target` is replaced only when it holds `marker` (a bundle's manifest, a Triton
    model's config.pbtxt); any other existing, non-empty directory is refused so user files are
    never overwritten.
    """
    target = Path(target).resolve()
    if target.exists():
        if not target.is_dir():
            raise BundleError(f"{target}: exists and is not a directory")
        if any(target.iterdir()) and not (target / marker).is_file():
            raise BundleError(
                f"{target}: directory exists, is not empty and holds no {marker}; choose another --out "
                "or remove it"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="." + target.name + ".partial-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it 0700; a bundle is shared
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old: Optional[Path] = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix="." + target.name + ".old-", dir=target.parent))
        os.rmdir(old)
        os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class Bundle:
    """A loaded, hash-verified bundle directory."""

    root: Path
    #: the manifest as JSON, for reports that copy sections of it
    manifest: Dict[str, Any]
    #: the same manifest, typed
    info: Manifest

    @classmethod
    def load(cls, root: PathLike, *, verify: bool = True) -> Bundle:
        root = Path(root)
        manifest_path = root / MANIFEST_NAME
        if not manifest_path.is_file():
            raise BundleError(f"{root}: not a bundle (no {MANIFEST_NAME})")
        info = Manifest.read(manifest_path)
        bundle = cls(root=root, manifest=info.to_dict(), info=info)
        if verify:
            bundle.verify()
        return bundle

    def verify(self) -> None:
        """Raise `BundleError` naming every missing or altered file."""
        problems = []
        for name, entry in sorted(self.manifest["files"].items()):
            path = self.root / name
            if not path.is_file():
                problems.append(f"{name} is missing")
                continue
            if os.path.getsize(path) != entry.get("bytes"):
                problems.append(
                    "{} has {} bytes, manifest says {}".format(
                        name, os.path.getsize(path), entry.get("bytes")
                    )
                )
            elif sha256_file(path) != entry.get("sha256"):
                problems.append(f"{name} does not match its sha256")
        if problems:
            raise BundleError("{}: bundle is damaged: {}".format(self.root, "; ".join(problems)))

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec.from_dict(self.manifest["model"]["spec"])

    def path(self, name: str) -> Path:
        if name not in self.manifest["files"]:
            raise BundleError(f"{self.root}: the manifest lists no file {name!r}")
        return self.root / name

    def onnx_path(self, precision: str = "fp32") -> Path:
        models = self.info.models
        if precision not in models:
            raise BundleError(
                "{}: no {} model in this bundle (has: {})".format(
                    self.root, precision, ", ".join(sorted(models)) or "none"
                )
            )
        return self.path(models[precision].file)
