"""The committed name table: extracted from the real wheels, tail rule, derived 8.5, extractor."""

from __future__ import annotations

import io
import json
import struct
import zipfile

import pytest

from edge.errors import EdgeBuildError
from edge.trt_api import NAMES_FILE, load_table, releases
from edge.trt_api.extract import build_document, python_names, rodata_tokens

RELEASES = ["8.5", "8.6", "10.3", "10.13", "10.16", "11.4"]


def test_table_is_small_and_records_its_wheels():
    assert NAMES_FILE.stat().st_size < 300_000
    document = json.loads(NAMES_FILE.read_text())
    assert releases() == RELEASES
    for release in ["8.6", "10.3", "10.13", "10.16", "11.4"]:
        entry = document["versions"][release]
        assert entry["wheel"].startswith("tensorrt")
        assert len(entry["wheel_sha256"]) == 64 and len(entry["so_sha256"]) == 64
    assert document["versions"]["8.5"]["derived_from"] == "8.6"
    assert "builder_optimization_level" in document["versions"]["8.5"]["removed"]


@pytest.mark.parametrize(
    "name, present",
    [
        ("execute_async_v3", RELEASES),
        ("INT8", RELEASES),  # stored only as the tail of UINT8 in some wheels
        ("FP16", ["8.5", "8.6", "10.3", "10.13", "10.16"]),
        ("execute_async_v2", ["8.5", "8.6"]),
        ("max_workspace_size", ["8.5", "8.6"]),
        ("builder_optimization_level", ["8.6", "10.3", "10.13", "10.16", "11.4"]),
        ("STRONGLY_TYPED", ["10.3", "10.13", "10.16", "11.4"]),
        ("EXPLICIT_BATCH", ["8.5", "8.6", "10.3", "10.13", "10.16"]),
        ("serialize", RELEASES),  # kept in 8.5 although it is the tail of a removed name
        ("no_such_trt_name_xyz", []),
    ],
)
def test_names_per_release(name, present):
    assert [r for r in RELEASES if load_table(r).has(name)] == present


def _elf(rodata: bytes) -> bytes:
    """A minimal ELF64 with .rodata and .shstrtab sections."""
    shstr = b"\0.rodata\0.shstrtab\0"
    header_size, sh_size = 64, 64
    rodata_at = header_size
    shstr_at = rodata_at + len(rodata)
    shoff = shstr_at + len(shstr)
    head = bytearray(b"\x7fELF" + bytes([2, 1, 1]) + bytes(9))
    head += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 0, shoff, 0, 64, 0, 0, sh_size, 3, 2)
    sections = struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    sections += struct.pack("<IIQQQQIIQQ", 1, 1, 2, 0, rodata_at, len(rodata), 0, 0, 1, 0)
    sections += struct.pack("<IIQQQQIIQQ", 9, 3, 0, 0, shstr_at, len(shstr), 0, 0, 1, 0)
    return bytes(head) + rodata + shstr + sections


def test_rodata_tokens_keep_trailing_identifiers():
    data = _elf(b"UINT8\0Builder\0see BuilderFlag.FP16\0two words\0\0123abc\0")
    assert rodata_tokens(data) == {"UINT8", "Builder", "FP16", "words", "abc"}
    with pytest.raises(EdgeBuildError, match="not a 64-bit"):
        rodata_tokens(b"not an elf at all" * 4)


def test_python_names_and_version():
    names, version = python_names("__version__ = '8.6.1'\ndef nptype(t):\n    pass\n_x = 1\n")
    assert names == {"__version__", "nptype"} and version == "8.6.1"


def _wheel(tmp_path, dist, version, rodata):
    path = tmp_path / f"{dist}-{version}-cp311-none-manylinux_2_17_x86_64.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tensorrt_bindings/tensorrt.so", _elf(rodata))
        archive.writestr("tensorrt_bindings/__init__.py", f"__version__ = {version!r}\n")
    path.write_bytes(buffer.getvalue())
    return path


def test_build_document_from_synthetic_wheels(tmp_path):
    wheels = [
        _wheel(tmp_path, "tensorrt_bindings", "8.6.1", b"UINT8\0VERSION_COMPATIBLE\0Builder\0"),
        _wheel(tmp_path, "tensorrt_cu12_bindings", "10.3.0", b"UINT8\0Builder\0STRONGLY_TYPED\0"),
    ]
    document = build_document(wheels)
    assert list(document["versions"]) == ["8.5", "8.6", "10.3"]
    assert "Builder" in document["common"] and "UINT8" in document["common"]
    assert document["versions"]["8.6"]["names"] == ["VERSION_COMPATIBLE"]
    assert "__version__" in document["common"]
    assert "VERSION_COMPATIBLE" not in document["versions"]["8.5"]["names"]
    assert document["versions"]["10.3"]["version"] == "10.3.0"
