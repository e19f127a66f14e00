"""Environment probe: a host without Jetson files, and a fake Jetson file tree in tmp_path.

The Jetson's /proc, /sys and /etc files and its `nvpmodel`/`tegrastats` binaries cannot exist
here, so the Jetson cases use files and scripts that reproduce their real formats; the probe's
file reading, parsing and subprocess handling are the real code paths.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from benchmarks.env import (
    TegrastatsSampler,
    parse_l4t_release,
    parse_nvpmodel,
    parse_tegrastats_line,
    probe_environment,
    probe_jetson,
    probe_libraries,
    summarize_tegrastats,
)

# Real tegrastats output formats (JetPack 6 Orin Nano, JetPack 5 AGX Orin, Xavier, Nano JP4).
ORIN_NANO_JP6 = (
    "11-20-2025 10:00:00 RAM 2448/7620MB (lfb 5x4MB) SWAP 0/3810MB (cached 0MB) "
    "CPU [1%@729,0%@729,0%@729,0%@729,0%@729,0%@729] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] "
    "NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off APE 200 cpu@46.5C soc2@45.281C "
    "soc0@45.625C gpu@46.593C tj@46.593C soc1@46.218C "
    "VDD_IN 4471mW/4471mW VDD_CPU_GPU_CV 480mW/480mW VDD_SOC 1439mW/1439mW"
)
AGX_ORIN_JP5 = (
    "RAM 3117/30536MB (lfb 6780x4MB) SWAP 0/15268MB (cached 0MB) CPU [0%@729,off,off,off] "
    "GR3D_FREQ 99%@1300 CV0@-256C CPU@48.5C GPU@50C "
    "VDD_GPU_SOC 6773mW/6773mW VDD_CPU_CV 795mW/795mW VIN_SYS_5V0 4050mW/4050mW"
)
XAVIER = (
    "RAM 1234/15692MB (lfb 3000x4MB) SWAP 0/7846MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
    "CPU [2%@1190] EMC_FREQ 0%@2133 GR3D_FREQ 0%@1377 AO@44C GPU@43.5C "
    "GPU 0/0 CPU 155/155 SOC 1087/1087 CV 0/0 VDDRQ 155/155 SYS5V 1684/1684"
)
NANO_JP4 = "RAM 1500/3956MB (lfb 1x4MB) CPU [5%@102] POM_5V_IN 2216/2216 POM_5V_GPU 40/40 POM_5V_CPU 404/404"

RELEASE_JP6 = (
    "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
    "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
)
DPKG_STATUS = (
    "Package: nvidia-l4t-core\nStatus: install ok installed\nVersion: 36.4.3-20250107174145\n\n"
    "Package: nvidia-jetpack\nStatus: install ok installed\nArchitecture: arm64\n"
    "Version: 6.2+b77\nDescription: NVIDIA Jetpack Meta Package\n continued line\n"
)


def _write(path: Path, data, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    path.chmod(mode)
    return path


def _script(bin_dir: Path, name: str, body: str) -> Path:
    path = _write(bin_dir / name, f"#!{sys.executable}\n{body}\n", 0o755)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _fake_jetson(root: Path, *, locked: bool) -> None:
    _write(root / "proc/device-tree/model", b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    _write(root / "etc/nv_tegra_release", RELEASE_JP6)
    _write(root / "var/lib/dpkg/status", DPKG_STATUS)
    _write(root / "proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 62.50\nCPU part\t: 0xd42\n")
    for cpu in range(4):
        d = root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        _write(d / "scaling_max_freq", "1510400\n")
        _write(d / "scaling_min_freq", "1510400\n" if locked or cpu else "729600\n")
    gpu = root / "sys/class/devfreq/17000000.gpu"
    _write(gpu / "max_freq", "1020000000\n")
    _write(gpu / "min_freq", "1020000000\n" if locked else "306000000\n")
    _write(root / "sys/class/devfreq/other.emc/min_freq", "1\n")  # not a GPU node


def test_probe_on_a_machine_without_jetson_files(tmp_path):
    env = probe_environment(root=tmp_path, which=lambda name: None)
    assert env["jetson"] is None and env["gpu"] is None
    assert env["host"]["cpu_model"] is None  # no /proc/cpuinfo under this root: null, not a guess
    assert env["host"]["cpu_count"] == os.cpu_count()
    assert env["libraries"]["numpy"] and env["libraries"]["tensorrt"] is None
    json.dumps(env)  # JSON-ready


def test_probe_of_this_host():
    if Path("/etc/nv_tegra_release").exists():
        pytest.skip("this host is a Jetson")
    env = probe_environment()
    assert env["jetson"] is None
    if Path("/proc/cpuinfo").exists():
        assert env["host"]["cpu_model"]


def test_library_versions_come_from_metadata_and_absent_ones_are_null():
    libs = probe_libraries({"numpy": ("numpy", ("numpy",)), "nope": ("no_such_mod_x", ("x",))})
    import numpy

    assert libs == {"numpy": numpy.__version__, "nope": None}


@pytest.mark.parametrize("locked", [True, False])
def test_fake_jetson_tree(tmp_path, locked):
    root = tmp_path / "root"
    _fake_jetson(root, locked=locked)
    bin_dir = tmp_path / "bin"
    _script(bin_dir, "nvpmodel", "print('NV Power Mode: MAXN_SUPER')\nprint(2)")
    _script(bin_dir, "tegrastats", "print('x')")

    def which(name):
        path = bin_dir / name
        return str(path) if path.exists() else None

    info = probe_jetson(root, which)
    assert info["model"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert info["l4t"] == "36.4.3" and info["jetpack"] == "6.2+b77"
    assert info["nvpmodel"] == {"name": "MAXN_SUPER", "id": 2}
    assert info["tegrastats"] is True
    if locked:
        assert info["clocks"] == {"cpu_locked": True, "gpu_locked": True, "locked": True}
    else:
        assert info["clocks"] == {"cpu_locked": False, "gpu_locked": False, "locked": False}


def test_jetson_without_nvpmodel_or_dpkg_records_nulls(tmp_path):
    _write(tmp_path / "etc/nv_tegra_release", "# R35 (release), REVISION: 4.1, GCID: 1\n")
    info = probe_jetson(tmp_path, lambda name: None)
    assert info["l4t"] == "35.4.1" and info["model"] is None and info["jetpack"] is None
    assert info["nvpmodel"] is None and info["tegrastats"] is False
    assert info["clocks"] == {"cpu_locked": None, "gpu_locked": None, "locked": None}


def test_failing_nvpmodel_is_logged_and_null(tmp_path, caplog):
    _write(tmp_path / "etc/nv_tegra_release", RELEASE_JP6)
    bad = _script(tmp_path / "bin", "nvpmodel", "import sys\nsys.exit('needs root')")
    info = probe_jetson(tmp_path, lambda name: str(bad) if name == "nvpmodel" else None)
    assert info["nvpmodel"] is None
    assert "exited 1" in caplog.text


def test_parsers():
    assert parse_l4t_release(RELEASE_JP6) == "36.4.3"
    assert parse_l4t_release("garbage") is None
    assert parse_nvpmodel("NV Power Mode: 15W\n1\n") == {"name": "15W", "id": 1}
    assert parse_nvpmodel("") == {"name": None, "id": None}


@pytest.mark.parametrize(
    "line, rails, temp",
    [
        (
            ORIN_NANO_JP6,
            {"VDD_IN": 4471, "VDD_CPU_GPU_CV": 480, "VDD_SOC": 1439},
            ("gpu", 46.593),
        ),
        (
            AGX_ORIN_JP5,
            {"VDD_GPU_SOC": 6773, "VDD_CPU_CV": 795, "VIN_SYS_5V0": 4050},
            ("CV0", -256.0),
        ),
        (
            XAVIER,
            {"GPU": 0, "CPU": 155, "SOC": 1087, "CV": 0, "VDDRQ": 155, "SYS5V": 1684},
            ("GPU", 43.5),
        ),
        (NANO_JP4, {"POM_5V_IN": 2216, "POM_5V_GPU": 40, "POM_5V_CPU": 404}, None),
    ],
)
def test_tegrastats_lines_yield_rails_not_memory(line, rails, temp):
    parsed = parse_tegrastats_line(line)
    assert parsed["rails_mw"] == rails  # RAM/SWAP/IRAM x/yMB and kB are not rails
    if temp:
        assert parsed["temps_c"][temp[0]] == temp[1]


def test_tegrastats_summary_means_and_input_rail():
    second = ORIN_NANO_JP6.replace("VDD_IN 4471mW", "VDD_IN 5471mW").replace(
        "gpu@46.593C", "gpu@50C"
    )
    s = summarize_tegrastats([ORIN_NANO_JP6, "noise", second], 100)
    assert s["samples"] == 2
    assert s["rails_mean_mw"]["VDD_IN"] == pytest.approx(4971)
    assert s["input_rail"] == "VDD_IN" and s["input_power_mean_mw"] == pytest.approx(4971)
    assert s["temps_max_c"]["gpu"] == 50.0
    assert summarize_tegrastats([AGX_ORIN_JP5], 100)["input_rail"] == "VIN_SYS_5V0"


def test_tegrastats_sampler_runs_and_stops_a_process(tmp_path):
    script = _script(
        tmp_path,
        "tegrastats",
        "import sys, time\nwhile True:\n"
        f"    print({ORIN_NANO_JP6!r}, flush=True)\n    time.sleep(0.02)",
    )
    sampler = TegrastatsSampler(command=[str(script)], interval_ms=20)
    assert sampler.available
    with sampler:
        deadline = 50
        while not sampler._lines and deadline:
            import time

            time.sleep(0.05)
            deadline -= 1
    summary = sampler.summary()
    assert summary["samples"] >= 1 and summary["input_rail"] == "VDD_IN"
    assert sampler._proc.poll() is not None  # stopped


def test_tegrastats_sampler_absent_is_a_no_op():
    sampler = TegrastatsSampler(which=lambda name: None)
    with sampler:
        pass
    assert not sampler.available and sampler.summary() is None
