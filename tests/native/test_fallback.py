"""Without the library the runtime keeps working: the module imports with numpy only, "auto"
falls back to OpenCV with a logged reason, and explicit requests fail with the build command."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from edge.errors import EdgeBuildError, MissingDependencyError
from edge.native import preproc
from edge.native.preproc import ENV_LIB, OpenCVPreprocessor, make_preprocessor

BLOCKED_IMPORT = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('cv2', 'torch', 'onnxruntime', 'tensorrt', 'cuda'):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import edge.native.preproc as p
chosen = p.make_preprocessor('auto')
print(type(chosen).__name__, p.opencv_interp())
"""


def test_imports_with_numpy_only_and_no_library(tmp_path):
    env = {"MER_EDGE_NATIVE_LIB": str(tmp_path / "nothing.so"), "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # no CUDA library in this checkout's build dir, or one without a GPU: OpenCV either way
    assert result.stdout.split() == ["OpenCVPreprocessor", "float"]


@pytest.fixture
def no_library(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_LIB, str(tmp_path))
    monkeypatch.setattr(preproc, "_REPO_BUILD", tmp_path / "no-build")
    return tmp_path


def test_auto_falls_back_to_opencv_with_a_reason(no_library, caplog):
    with caplog.at_level(logging.INFO, logger="edge.native.preproc"):
        chosen = make_preprocessor("auto")
    assert isinstance(chosen, OpenCVPreprocessor)
    assert "libedge_preproc.so not found" in caplog.text
    assert str(no_library) in caplog.text


def test_explicit_native_requests_fail_with_the_build_command(no_library):
    for kind in ("native", "native-cpu"):
        with pytest.raises(MissingDependencyError, match="cmake -S . -B build/native"):
            make_preprocessor(kind)
    with pytest.raises(EdgeBuildError, match="preprocessor must be one of"):
        make_preprocessor("gpu")


def test_env_var_takes_a_directory_or_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_LIB, str(tmp_path))
    assert preproc.library_candidates("cpu")[0] == tmp_path / "libedge_preproc_cpu.so"
    monkeypatch.setenv(ENV_LIB, str(tmp_path / "custom.so"))
    assert preproc.library_candidates("cuda")[0] == tmp_path / "custom.so"


def test_a_file_that_is_not_a_library_is_a_clear_error(tmp_path):
    bogus = tmp_path / "libedge_preproc.so"
    bogus.write_text("not an ELF file")
    with pytest.raises(MissingDependencyError, match="cannot be loaded"):
        make_preprocessor("native", path=bogus)
    assert isinstance(make_preprocessor("auto", path=bogus), OpenCVPreprocessor)
