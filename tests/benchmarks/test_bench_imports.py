"""The device-side benchmark modules import with numpy alone (no matplotlib, ORT, torch, TRT)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked for this test: ' + name)
        return None
sys.meta_path.insert(0, Block())
import benchmarks.latency, benchmarks.accuracy, benchmarks.env, benchmarks.report, benchmarks.cli
from benchmarks.report import render_markdown, html_available
from benchmarks.env import probe_environment
env = probe_environment()
assert env['libraries']['matplotlib'] is None and env['libraries']['torch'] is None, env
print('ok')
"""


def test_benchmarks_import_on_a_numpy_only_device():
    blocked = ["matplotlib", "torch", "onnx", "onnxruntime", "tensorrt", "cuda", "pandas", "PIL"]
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKER.format(blocked=blocked)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
