"""Fixtures for the TensorRT tests: a small real bundle and fake-TensorRT behaviours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import pytest

from edge.bundle import Bundle, write_manifest
from edge.engine import DeviceInfo

ORIN = DeviceInfo(
    model="NVIDIA Jetson AGX Orin Developer Kit",
    l4t="36.4.0",
    jetpack="6.1+b123",
    compute_capability="8.7",
)


def make_bundle(root: Path, models: Dict[str, str], target: str = "10") -> Bundle:
    """A bundle with placeholder ONNX files: the fake parser reads bytes, never parses them."""
    root.mkdir(parents=True)
    table = {}
    for precision, name in models.items():
        (root / name).write_bytes(b"onnx:" + precision.encode())
        table[precision] = {"file": name, "precision": precision}
    manifest = {
        "model": {"arch": "mmnet"},
        "target": {"tensorrt": target, "opset": 17, "jetpack": None},
        "models": table,
        "engines": [],
    }
    write_manifest(root, manifest)
    return Bundle.load(root)


@pytest.fixture
def bundle(tmp_path) -> Bundle:
    return make_bundle(
        tmp_path / "bundle", {"fp32": "model.fp32.onnx", "int8": "model.int8.qdq.onnx"}
    )


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())
