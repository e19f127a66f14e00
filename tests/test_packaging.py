"""The four generic import names resolve to this project, the device side imports without the
host stack, and module boundaries hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.blocking import run_blocked
from tests.conftest import ROOT

PACKAGES = ("edge", "quantize", "calib", "benchmarks")


@pytest.mark.parametrize("name", PACKAGES)
def test_package_is_ours_not_a_pypi_namesake(name):
    module = __import__(name)
    assert Path(module.__file__).resolve().is_relative_to(ROOT / name), module.__file__
    assert isinstance(module.__all__, list)


DEVICE_MODULES = (
    "edge",
    "edge.spec",
    "edge.bundle",
    "edge.parity",
    "edge.metrics",
    "edge.noise",
    "edge.preprocess",
    "edge.flow",
    "edge.targets",
    "edge.runtime",
    "edge.runtime.base",
    "edge.runtime.ort",
    "edge.classify",
    "edge.models",
    "edge.models.mmnet_spec",
    "edge.cli.run",
    "benchmarks",
    "benchmarks.latency",
    "benchmarks.cli",
    "benchmarks.accuracy",
    "benchmarks.env",
    "benchmarks.report",
    "calib",
    "calib.datasets",
    "edge.align",
    "edge.pipeline",
    "edge.engine",
    "edge.lint",
    "edge.trt_api",
    "edge.runtime.trt",
    "edge.cli.engine",
    "edge.cli.serve",
    "edge.cli.export",
    "edge.fleet",
    "edge.fleet.mqtt",
    "edge.fleet.serve",
    "edge.fleet.repository",
)


def test_device_side_imports_without_host_stack():
    blocked = (
        "torch",
        "onnx",
        "onnxruntime",
        "onnxsim",
        "onnxslim",
        "tensorrt",
        "pycuda",
        "cuda",
        "pandas",
        "skimage",
        "pytriton",
        "tritonclient",
        "paho",
    )
    code = f"import importlib\nfor m in {DEVICE_MODULES!r}: importlib.import_module(m)\nprint('ok')"
    proc = run_blocked(code, blocked)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_missing_torch_names_the_extra():
    code = (
        "from edge.models import architecture\n"
        "from edge.errors import MissingDependencyError\n"
        "try:\n    architecture('mmnet')\n"
        "except MissingDependencyError as e:\n    print(e)\n"
    )
    proc = run_blocked(code, ("torch",))
    assert proc.returncode == 0, proc.stderr
    assert "mer-edge[host]" in proc.stdout and "torch==2.13.0" in proc.stdout


def test_missing_fleet_extra_is_named():
    code = (
        "from edge.fleet.mqtt import MqttEvents, parse_mqtt_url\n"
        "from edge.errors import EdgeBuildError\n"
        "try:\n    MqttEvents(parse_mqtt_url('mqtt://127.0.0.1:1/t'))\n"
        "except EdgeBuildError as e:\n    print(e)\n"
    )
    proc = run_blocked(code, ("paho",))
    assert proc.returncode == 0, proc.stderr
    assert "mer-edge[fleet]" in proc.stdout


@pytest.mark.parametrize("module", ["edge.cli.run", "benchmarks.cli", "quantize.cli.build"])
def test_cli_help_needs_no_heavy_import(module):
    blocked = ("tensorrt", "pycuda", "cuda", "pandas")
    if module != "quantize.cli.build":
        blocked += ("torch", "onnx", "onnxruntime")
    code = f"import sys\nfrom {module} import main\nsys.argv=['x','--help']\nmain()"
    proc = run_blocked(code, blocked)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def _imported_packages(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


# package -> project packages it must not import (ARCHITECTURE.md section 2, STYLE.md 5.1)
FORBIDDEN = {
    "edge": {"quantize", "benchmarks", "calib"},
    "calib": {"quantize", "benchmarks"},
    "quantize": {"benchmarks"},
    "benchmarks": {"quantize"},
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependency_direction(package):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if package == "benchmarks" and path.name.startswith("bench_"):
            continue  # the project's own host benchmarks time quantize's steps on purpose
        bad = FORBIDDEN[package] & set(_imported_packages(path))
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders


def test_tests_are_not_packaged():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"tests"' not in text.split("[tool.setuptools]")[1].split("[")[0]
