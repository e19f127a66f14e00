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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

from edge.errors import BundleError
from edge.spec import ModelSpec

__all__ = [
    "SCHEMA_VERSION",
    "MANIFEST_NAME",
    "Bundle",
    "sha256_file",
    "file_entry",
    "staged_directory",
    "write_manifest",
]

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

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


def write_manifest(directory: PathLike, manifest: Dict[str, Any]) -> Path:
    """Hash every file in `directory` into `manifest["files"]` and write `manifest.json`."""
    directory = Path(directory)
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name != MANIFEST_NAME:
            files[path.relative_to(directory).as_posix()] = file_entry(path)
    manifest = dict(manifest)
    manifest["schema_version"] = SCHEMA_VERSION
    manifest["files"] = files
    target = directory / MANIFEST_NAME
    target.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return target


def _is_bundle(path: Path) -> bool:
    return (path / MANIFEST_NAME).is_file()


@contextlib.contextmanager
def staged_directory(target: PathLike) -> Iterator[Path]:
    """Yield an empty staging directory that becomes `target` only if the block succeeds.

    An existing `target` is replaced only when it is itself a bundle (it has a manifest); any
    other existing, non-empty directory is refused so user files are never overwritten.
    """
    target = Path(target).resolve()
    if target.exists():
        if not target.is_dir():
            raise BundleError(f"{target}: exists and is not a directory")
        if any(target.iterdir()) and not _is_bundle(target):
            raise BundleError(
                f"{target}: directory exists, is not empty and holds no {MANIFEST_NAME}; choose another --out "
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
    manifest: Dict[str, Any]

    @classmethod
    def load(cls, root: PathLike, *, verify: bool = True) -> Bundle:
        root = Path(root)
        manifest_path = root / MANIFEST_NAME
        if not manifest_path.is_file():
            raise BundleError(f"{root}: not a bundle (no {MANIFEST_NAME})")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"{manifest_path}: unreadable manifest: {exc}") from exc
        if not isinstance(manifest, dict) or "files" not in manifest:
            raise BundleError(f"{manifest_path}: manifest has no 'files' table")
        version = manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"{manifest_path}: schema_version {version!r} is not supported (this mer-edge reads {SCHEMA_VERSION})"
            )
        bundle = cls(root=root, manifest=manifest)
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
        models = self.manifest.get("models", {})
        if precision not in models:
            raise BundleError(
                "{}: no {} model in this bundle (has: {})".format(
                    self.root, precision, ", ".join(sorted(models)) or "none"
                )
            )
        return self.path(models[precision]["file"])
