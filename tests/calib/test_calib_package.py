"""Package surface: registry, exports, and imports that need no spreadsheet library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import calib.datasets
import calib.fixes

ROOT = Path(__file__).resolve().parents[2]

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"pandas", "openpyxl", "xlrd", "cv2", "torch"}:
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
import calib.datasets, calib.fixes
from calib.datasets import Sample, validate
print(validate([Sample("t", "s", "c", 1, 2, 3, "x")])[0].kind)
"""


def test_exports_resolve() -> None:
    for module in (calib.datasets, calib.fixes):
        for name in module.__all__:
            assert hasattr(module, name), name
    assert set(calib.datasets.DATASETS) >= {"casme2", "samm", "mmew", "casme3", "generic"}


def test_import_needs_no_spreadsheet_library_or_opencv() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCK], cwd=str(ROOT), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "frame_dir_unknown"
