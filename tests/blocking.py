"""Run Python in a subprocess where some top-level packages cannot be imported.

Proves that a module imports (or fails with the right message) on a machine without the host
stack, the way a Jetson's system Python looks.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Iterable

from tests.conftest import ROOT

BLOCKER = """
import sys
BLOCKED = {blocked!r}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError('blocked for this test: ' + name)
        return None
sys.meta_path.insert(0, Block())
"""


def run_blocked(code: str, blocked: Iterable[str]) -> subprocess.CompletedProcess:
    script = BLOCKER.format(blocked=list(blocked)) + code
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
