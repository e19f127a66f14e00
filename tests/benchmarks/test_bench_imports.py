"""The device-side benchmark modules import with numpy alone (no matplotlib, ORT, torch, TRT)."""

from __future__ import annotations

from tests.blocking import run_blocked

CODE = """
import benchmarks.latency, benchmarks.accuracy, benchmarks.env, benchmarks.report, benchmarks.cli
from benchmarks.report import render_markdown, html_available
from benchmarks.env import probe_environment
env = probe_environment()
assert env['libraries']['matplotlib'] is None and env['libraries']['torch'] is None, env
print('ok')
"""


def test_benchmarks_import_on_a_numpy_only_device():
    blocked = ["matplotlib", "torch", "onnx", "onnxruntime", "tensorrt", "cuda", "pandas", "PIL"]
    proc = run_blocked(CODE, blocked)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
