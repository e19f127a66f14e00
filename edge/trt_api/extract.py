"""Extract the Python API name table of each real TensorRT bindings wheel into `names.json`.

TensorRT cannot be installed here, but its PyPI bindings wheels are real: the pybind11 module
`tensorrt.so` stores the name of every class, method, property and enum member as a string
literal in `.rodata`. This tool reads those bytes with the standard library only (the wheel is
data: never installed, never imported) and writes the per-version name table the fake
`tensorrt` module in the tests is generated from.

The linker merges string tails (`INT8` is stored only as the end of `UINT8`), so for every
NUL-terminated string the trailing identifier is kept, and a name is present when it is one of
those tokens or the tail of one. Names defined in the wheel's `__init__.py` (`__version__`,
`nptype`, `volume`, ...) are added from its syntax tree.

    python -m edge.trt_api.extract --wheel-dir DIR [--out edge/trt_api/names.json]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import struct
import sys
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from edge.errors import EdgeBuildError

__all__ = [
    "DERIVED",
    "rodata_tokens",
    "python_names",
    "wheel_table",
    "build_document",
    "main",
]

_TAIL = re.compile(rb"[A-Za-z0-9_]+\Z")
_WHEEL = re.compile(r"^(tensorrt[_a-z0-9]*bindings)-([0-9][0-9.]*)-")

#: TensorRT 8.5 (JetPack 5) has no PyPI bindings wheel: its table is 8.6.1's minus the names
#: 8.6 introduced (tensorrt.md section 3: builder optimization level, version compatibility and
#: lean runtime, hardware compatibility; 8.6 release notes: auxiliary streams, progress monitor).
DERIVED = {
    "8.5": {
        "from": "8.6",
        "version": "8.5.2.2",
        "removed": [
            "builder_optimization_level",
            "VERSION_COMPATIBLE",
            "EXCLUDE_LEAN_RUNTIME",
            "HardwareCompatibilityLevel",
            "hardware_compatibility_level",
            "AMPERE_PLUS",
            "SAME_COMPUTE_CAPABILITY",
            "max_aux_streams",
            "IProgressMonitor",
            "progress_monitor",
            "plugins_to_serialize",
            "engine_host_code_allowed",
            "load_runtime",
        ],
        "reason": "no tensorrt-bindings 8.5 wheel on PyPI; derived from 8.6.1 minus the names "
        "8.6 added (shared/facts/tensorrt.md section 3, TensorRT 8.6 release notes)",
    }
}


def _sections(data: bytes, origin: str) -> Dict[str, Tuple[int, int]]:
    """ELF64 little-endian section name -> (file offset, size)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise EdgeBuildError(f"{origin}: not a 64-bit little-endian ELF shared object")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    out = {}
    for header in headers:
        start = names_at + header[0]
        out[data[start : data.index(b"\0", start)].decode("ascii")] = (header[4], header[5])
    return out


def rodata_tokens(data: bytes, origin: str = "tensorrt.so") -> Set[str]:
    """Trailing identifier of every NUL-terminated string in `.rodata`, leading digits dropped."""
    sections = _sections(data, origin)
    if ".rodata" not in sections:
        raise EdgeBuildError(f"{origin}: no .rodata section")
    offset, size = sections[".rodata"]
    tokens = set()
    for chunk in data[offset : offset + size].split(b"\0"):
        match = _TAIL.search(chunk)
        if match:
            token = match.group().lstrip(b"0123456789").decode("ascii")
            if token:
                tokens.add(token)
    return tokens


def python_names(source: str) -> Tuple[Set[str], Optional[str]]:
    """Top-level names the wheel's `__init__.py` defines, and its `__version__` literal."""
    tree = ast.parse(source)
    names = set()
    version = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and not target.id.startswith("_"):
                    names.add(target.id)
                if isinstance(target, ast.Name) and target.id == "__version__":
                    names.add("__version__")
                    if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                        version = node.value.value
    return names, version


def _maximal(tokens: Iterable[str]) -> List[str]:
    """Drop tokens that are the tail of another token (still present by the tail rule)."""
    by_reversed = sorted(set(tokens), key=lambda t: t[::-1])
    keep = []
    for i, token in enumerate(by_reversed):
        if i + 1 < len(by_reversed) and by_reversed[i + 1].endswith(token):
            continue
        keep.append(token)
    return sorted(keep)


def wheel_table(path: Path) -> Dict[str, object]:
    """Read one bindings wheel: its version, hashes and name tokens."""
    match = _WHEEL.match(path.name)
    if not match:
        raise EdgeBuildError(f"{path}: not a TensorRT bindings wheel name")
    raw = path.read_bytes()
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise EdgeBuildError(f"{path}: not a readable wheel ({exc})") from exc
    with archive:
        members = archive.namelist()
        so_names = [m for m in members if re.match(r"^tensorrt[a-z_]*/tensorrt[^/]*\.so$", m)]
        init_names = [m for m in members if re.match(r"^tensorrt[a-z_]*/__init__\.py$", m)]
        if len(so_names) != 1 or len(init_names) != 1:
            raise EdgeBuildError(f"{path}: expected one tensorrt .so and one __init__.py")
        so_bytes = archive.read(so_names[0])
        init_source = archive.read(init_names[0]).decode("utf-8")
    tokens = rodata_tokens(so_bytes, f"{path}:{so_names[0]}")
    py_names, version = python_names(init_source)
    return {
        "wheel": path.name,
        "wheel_sha256": hashlib.sha256(raw).hexdigest(),
        "so": so_names[0],
        "so_sha256": hashlib.sha256(so_bytes).hexdigest(),
        "version": version or match.group(2),
        "tokens": tokens | py_names,
    }


def _without(tokens: Iterable[str], removed: Iterable[str]) -> Set[str]:
    """`tokens` minus `removed`, keeping the tails a dropped token carried for other names.

    `serialize` is stored only as the tail of `plugins_to_serialize`, so dropping that token
    keeps its suffixes after each `_` that do not end with a removed name.
    """
    removed = set(removed)
    kept = set()
    for token in tokens:
        if not any(token.endswith(r) for r in removed):
            kept.add(token)
            continue
        parts = token.split("_")
        for i in range(1, len(parts)):
            tail = "_".join(parts[i:])
            if tail and not any(tail.endswith(r) for r in removed):
                kept.add(tail)
    return kept


def _release(version: str) -> str:
    major, minor = version.split(".")[:2]
    return f"{major}.{minor}"


def build_document(wheels: Sequence[Path]) -> Dict[str, object]:
    """The `names.json` document: tokens shared by all wheels, plus each version's own."""
    tables = {}
    for path in sorted(wheels):
        table = wheel_table(path)
        release = _release(str(table["version"]))
        if release in tables:
            raise EdgeBuildError(f"{path}: a second wheel for TensorRT {release}")
        tables[release] = table
    if not tables:
        raise EdgeBuildError("no tensorrt bindings wheels given")
    for release, rule in DERIVED.items():
        base = tables.get(rule["from"])
        if base is None:
            raise EdgeBuildError(
                f"TensorRT {release} is derived from {rule['from']}: wheel missing"
            )
        tokens = _without(base["tokens"], rule["removed"])
        removed = set(rule["removed"])
        tables[release] = {
            "derived_from": rule["from"],
            "version": rule["version"],
            "removed": sorted(removed),
            "reason": rule["reason"],
            "tokens": tokens,
        }
    common = set.intersection(*(set(t["tokens"]) for t in tables.values()))
    versions = {}
    for release in sorted(tables, key=lambda r: tuple(int(p) for p in r.split("."))):
        table = dict(tables[release])
        own = set(table.pop("tokens")) - common
        table["names"] = _maximal(own)
        versions[release] = table
    return {
        "format": 1,
        "generator": "python -m edge.trt_api.extract",
        "rule": "a name is present in a version when it is one of common+names or the tail of "
        "one (the linker merges string tails: INT8 is stored as the end of UINT8)",
        "source": "trailing identifier of every NUL-terminated string in tensorrt.so .rodata, "
        "plus top-level names of the wheel's __init__.py",
        "common": _maximal(common),
        "versions": versions,
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.trt_api.extract", description=__doc__)
    parser.add_argument("--wheel-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("names.json"))
    args = parser.parse_args(argv)
    wheels = sorted(args.wheel_dir.glob("tensorrt*bindings-*.whl"))
    try:
        document = build_document(wheels)
    except EdgeBuildError as exc:
        print(f"extract: error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(document, indent=0, sort_keys=False) + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text)} bytes): " + ", ".join(document["versions"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
