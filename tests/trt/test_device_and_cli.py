"""Device probe on fake Jetson files, the device command, and numpy-only imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge.cli import engine as engine_cli
from edge.engine import device_command, probe_device
from edge.engine.device import parse_tegra_release
from tests.conftest import ROOT


def test_probe_reads_jetson_files(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text(
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n"
    )
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\0")
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(
        "Package: bash\nStatus: install ok installed\nVersion: 5.1\n\n"
        "Package: nvidia-jetpack\nStatus: install ok installed\nVersion: 6.2+b77\n"
    )
    info = probe_device(tmp_path)
    assert info.model == "NVIDIA Jetson Orin Nano Developer Kit"
    assert (info.l4t, info.jetpack, info.compute_capability) == ("36.4.3", "6.2+b77", None)


def test_probe_records_null_when_not_a_jetson(tmp_path):
    info = probe_device(tmp_path)
    assert info.to_dict() == {
        "model": None,
        "l4t": None,
        "jetpack": None,
        "compute_capability": None,
    }
    assert parse_tegra_release("garbage") is None


def test_device_command_is_exact():
    assert device_command("build/demo", "int8") == (
        "python3 -m edge.cli.engine --bundle build/demo --precision int8"
    )
    assert device_command("my bundle", "fp16", workspace_mib=512, dla_core=0) == (
        "python3 -m edge.cli.engine --bundle 'my bundle' --precision fp16 --workspace-mib 512 --dla-core 0"
    )


def test_engine_cli_without_tensorrt_says_how_to_install(tmp_path, capsys):
    code = engine_cli.main(["--bundle", str(tmp_path), "--precision", "int8"])
    assert code == 1
    assert "apt install python3-libnvinfer" in capsys.readouterr().err


def test_missing_cuda_driver_is_one_line_naming_the_driver():
    from edge.engine.device import require_cuda_driver
    from edge.errors import MissingDependencyError
    from tests.trt.fake_cuda import FakeCudart

    assert require_cuda_driver(FakeCudart(device_count=2)) == 2
    for cudart, detail in (
        (FakeCudart(count_error=35), "cudaGetDeviceCount: CUDA error 35"),
        (FakeCudart(device_count=0), "found no GPU"),
    ):
        with pytest.raises(MissingDependencyError) as info:
            require_cuda_driver(cudart)
        message = str(info.value)
        assert "\n" not in message and detail in message
        assert (
            "install the NVIDIA driver" in message and "sudo apt install nvidia-jetpack" in message
        )
        assert "CUDA 13.0 or newer" in message

    class NoLibrary(FakeCudart):
        def cudaGetDeviceCount(self):
            raise RuntimeError("libcudart.so.13: cannot open shared object file")

    with pytest.raises(MissingDependencyError, match="RuntimeError: libcudart.so.13: cannot open"):
        require_cuda_driver(NoLibrary())


def test_real_cuda_python_without_a_driver_names_the_driver():
    """cuda-python imports without a GPU; on this machine (no driver) its first call fails."""
    pytest.importorskip("cuda.bindings.runtime")
    from edge.engine.device import load_cudart, require_cuda_driver
    from edge.errors import MissingDependencyError

    cudart = load_cudart()
    if ROOT.joinpath("/dev/nvidiactl").exists():
        pytest.skip("a CUDA driver is present")
    with pytest.raises(
        MissingDependencyError, match="no usable CUDA driver .*install the NVIDIA driver"
    ):
        require_cuda_driver(cudart)


def test_missing_tensorrt_and_cuda_python_are_one_line_each(monkeypatch, tmp_path, capsys):
    from edge.engine.device import CUDA_PYTHON_HINT, load_cudart, load_tensorrt
    from edge.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependencyError, match="sudo apt install python3-libnvinfer"):
        load_tensorrt()
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError) as info:
        load_cudart()
    assert str(info.value) == CUDA_PYTHON_HINT
    assert "pip install 'mer-edge[jetson]'" in CUDA_PYTHON_HINT

    from benchmarks import engine_check

    assert engine_check.main(["check", "--bundle", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sudo apt install python3-libnvinfer" in err[0]


BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'onnx', 'onnxruntime', 'tensorrt', 'cuda', 'pycuda', 'pandas'}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import edge._trtcompat, edge.engine, edge.lint, edge.lint.qdq, edge.trt_api, edge.trt_api.extract
import edge.runtime.trt, edge.cli.engine
print('ok')
"""


def test_new_device_modules_import_with_numpy_only():
    proc = subprocess.run([sys.executable, "-c", BLOCK], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
