"""What a benchmark ran on, recorded with every result: host, libraries and Jetson state.

Read only: clocks, fans and power modes are never changed, only read (`nvpmodel -q`, sysfs
frequency limits, `tegrastats`). Every value is `None` when its source is absent, never a
guess. File locations hang off an injectable `root` and commands off an injectable `which`, so
tests can stand up a fake Jetson file tree.
"""

from __future__ import annotations

import importlib
import logging
import os
import platform
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from edge._lazy import is_available

__all__ = [
    "LIBRARIES",
    "INPUT_RAILS",
    "probe_environment",
    "probe_host",
    "probe_libraries",
    "probe_jetson",
    "parse_l4t_release",
    "parse_nvpmodel",
    "parse_tegrastats_line",
    "summarize_tegrastats",
    "TegrastatsSampler",
]

logger = logging.getLogger(__name__)

Which = Callable[[str], Optional[str]]

#: label -> (import name, distribution names to ask importlib.metadata, in order).
LIBRARIES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "mer-edge": ("edge", ("mer-edge",)),
    "numpy": ("numpy", ("numpy",)),
    "onnx": ("onnx", ("onnx",)),
    "onnxruntime": ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
    "torch": ("torch", ("torch",)),
    "tensorrt": ("tensorrt", ("tensorrt", "tensorrt-cu13", "tensorrt-cu12")),
    "cuda-python": ("cuda", ("cuda-python", "cuda-bindings")),
    "opencv": ("cv2", ("opencv-python-headless", "opencv-python", "opencv-contrib-python")),
    "matplotlib": ("matplotlib", ("matplotlib",)),
}

#: Rails that measure the whole board's input; sub-rails must not be added to them.
INPUT_RAILS = ("VDD_IN", "VIN_SYS_5V0", "POM_5V_IN", "VIN")

_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]+) (\d+)(?:mW)?/(\d+)(?:mW)?(?![\w/])")
_TEMP = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")


def _read(path: Path) -> Optional[str]:
    """File text without trailing NULs/whitespace; None when absent or unreadable."""
    try:
        return path.read_bytes().decode("utf-8", errors="replace").strip("\x00 \n\t")
    except OSError:
        return None


def _under(root: Path, absolute: str) -> Path:
    return root / absolute.lstrip("/")


def _run(command: Sequence[str], timeout: float = 5.0) -> Optional[str]:
    """stdout of a read-only query command; None (and a log line) when it fails."""
    try:
        proc = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("%s failed: %s", " ".join(command), exc)
        return None
    if proc.returncode != 0:
        logger.warning(
            "%s exited %d: %s", " ".join(command), proc.returncode, proc.stderr.strip()[:200]
        )
        return None
    return proc.stdout


# host -------------------------------------------------------------------------------------------
def probe_host(root: Path = Path("/")) -> Dict[str, Any]:
    """OS, architecture, Python, CPU model (from /proc/cpuinfo) and usable core count."""
    cpu_model = None
    cpuinfo = _read(_under(root, "/proc/cpuinfo"))
    if cpuinfo:
        for line in cpuinfo.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                cpu_model = value.strip()
                break
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "hostname": platform.node() or None,
        "os": platform.platform(),
        "machine": platform.machine() or None,
        "python": platform.python_version(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpu_usable": len(affinity(0)) if affinity else None,
    }


def _metadata_version(dists: Sequence[str]) -> Optional[str]:
    from importlib import metadata

    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def probe_libraries(libraries: Optional[Dict[str, Tuple[str, Tuple[str, ...]]]] = None) -> Dict:
    """Version of each library that is importable here, None for the others.

    Versions come from package metadata without importing; only a module installed without
    metadata (JetPack's apt `tensorrt`, `cv2`) is imported to read its `__version__`.
    """
    out: Dict[str, Optional[str]] = {}
    for label, (module, dists) in (libraries or LIBRARIES).items():
        if not is_available(module):
            out[label] = None
            continue
        version = _metadata_version(dists)
        if version is None:
            try:
                version = str(getattr(importlib.import_module(module), "__version__", None))
            except ImportError as exc:
                logger.warning("%s is present but does not import: %s", module, exc)
                version = None
        out[label] = None if version in (None, "None") else version
    return out


def _probe_gpu(which: Which) -> Optional[List[Dict[str, str]]]:
    """Discrete GPUs per `nvidia-smi` (a Jetson's integrated GPU has none): name and driver."""
    if not which("nvidia-smi"):
        return None
    text = _run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    if text is None:
        return None
    gpus = []
    for line in text.strip().splitlines():
        name, _, driver = line.partition(",")
        gpus.append({"name": name.strip(), "driver": driver.strip() or None})
    return gpus or None


# Jetson -----------------------------------------------------------------------------------------
def parse_l4t_release(text: str) -> Optional[str]:
    """`# R36 (release), REVISION: 4.3, ...` (/etc/nv_tegra_release) -> "36.4.3"."""
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return "{}.{}".format(match.group(1), match.group(2).rstrip(".")) if match else None


def _dpkg_version(root: Path, package: str) -> Optional[str]:
    status = _read(_under(root, "/var/lib/dpkg/status"))
    if not status:
        return None
    for block in status.split("\n\n"):
        fields = dict(
            line.split(":", 1) for line in block.splitlines() if ":" in line and line[:1] != " "
        )
        if fields.get("Package", "").strip() == package:
            return fields.get("Version", "").strip() or None
    return None


def parse_nvpmodel(text: str) -> Dict[str, Any]:
    """`nvpmodel -q` output -> {"name": "MAXN", "id": 0} (either None when not printed)."""
    name = None
    mode_id = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("NV Power Mode:"):
            name = line.split(":", 1)[1].strip() or None
        elif line.isdigit():
            mode_id = int(line)
    return {"name": name, "id": mode_id}


def _all_equal_limits(pairs: List[Tuple[Optional[str], Optional[str]]]) -> Optional[bool]:
    known = [(lo, hi) for lo, hi in pairs if lo is not None and hi is not None]
    if not known:
        return None
    return all(lo == hi for lo, hi in known)


def _clock_state(root: Path) -> Dict[str, Optional[bool]]:
    """Locked = every minimum frequency raised to its maximum, as `jetson_clocks` leaves them."""
    cpus = sorted(_under(root, "/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq"))
    cpu = _all_equal_limits(
        [(_read(d / "scaling_min_freq"), _read(d / "scaling_max_freq")) for d in cpus]
    )
    gpus = [
        d
        for d in sorted(_under(root, "/sys/class/devfreq").glob("*"))
        if re.search(r"gpu|gv11b|ga10b|gb10b|gp10b", d.name)
    ]
    gpu = _all_equal_limits([(_read(d / "min_freq"), _read(d / "max_freq")) for d in gpus])
    if cpu is None and gpu is None:
        locked = None
    elif cpu is False or gpu is False:
        locked = False
    else:
        locked = True
    return {"cpu_locked": cpu, "gpu_locked": gpu, "locked": locked}


def probe_jetson(root: Path = Path("/"), which: Which = shutil.which) -> Optional[Dict[str, Any]]:
    """Module, L4T/JetPack, power mode and clock state; None when this is not a Jetson."""
    model = _read(_under(root, "/proc/device-tree/model"))
    release = _read(_under(root, "/etc/nv_tegra_release"))
    if release is None and not (model and "jetson" in model.lower()):
        return None
    l4t = parse_l4t_release(release) if release else None
    nvp = None
    if which("nvpmodel"):
        text = _run([which("nvpmodel") or "nvpmodel", "-q"])
        nvp = parse_nvpmodel(text) if text is not None else None
    return {
        "model": model,
        "l4t": l4t,
        "jetpack": _dpkg_version(root, "nvidia-jetpack"),
        "nvpmodel": nvp,
        "clocks": _clock_state(root),
        "tegrastats": bool(which("tegrastats")),
    }


def probe_environment(
    root: Path = Path("/"), which: Which = shutil.which, *, libraries: bool = True
) -> Dict[str, Any]:
    """Everything above, as one JSON-ready dict."""
    return {
        "probed_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": probe_host(root),
        "libraries": probe_libraries() if libraries else {},
        "gpu": _probe_gpu(which),
        "jetson": probe_jetson(root, which),
    }


# tegrastats -------------------------------------------------------------------------------------
def parse_tegrastats_line(line: str) -> Dict[str, Dict[str, float]]:
    """One tegrastats line -> {"rails_mw": {rail: instantaneous mW}, "temps_c": {...}}."""
    rails = {m.group(1): float(m.group(2)) for m in _RAIL.finditer(line)}
    temps = {m.group(1): float(m.group(2)) for m in _TEMP.finditer(line)}
    return {"rails_mw": rails, "temps_c": temps}


def summarize_tegrastats(lines: Sequence[str], interval_ms: Optional[int]) -> Dict[str, Any]:
    """Mean power per rail and peak temperatures over the sampled lines."""
    rails: Dict[str, List[float]] = {}
    temps: Dict[str, float] = {}
    samples = 0
    for line in lines:
        parsed = parse_tegrastats_line(line)
        if not parsed["rails_mw"] and not parsed["temps_c"]:
            continue
        samples += 1
        for name, value in parsed["rails_mw"].items():
            rails.setdefault(name, []).append(value)
        for name, value in parsed["temps_c"].items():
            temps[name] = max(value, temps.get(name, value))
    means = {name: sum(v) / len(v) for name, v in rails.items()}
    input_rail = next((r for r in INPUT_RAILS if r in means), None)
    return {
        "source": "tegrastats",
        "samples": samples,
        "interval_ms": interval_ms,
        "rails_mean_mw": means,
        "input_rail": input_rail,
        "input_power_mean_mw": means.get(input_rail) if input_rail else None,
        "temps_max_c": temps,
    }


class TegrastatsSampler:
    """Runs `tegrastats` alongside a measurement: `with TegrastatsSampler() as s: ...; s.summary()`.

    Where `tegrastats` is absent the sampler does nothing and `summary()` is None.
    """

    def __init__(
        self,
        *,
        interval_ms: int = 100,
        command: Optional[Sequence[str]] = None,
        which: Which = shutil.which,
    ) -> None:
        self.interval_ms = interval_ms
        if command is None:
            binary = which("tegrastats")
            command = [binary, "--interval", str(interval_ms)] if binary else None
        self._command = list(command) if command else None
        self._proc: Optional[subprocess.Popen] = None
        self._thread: Optional[threading.Thread] = None
        self._lines: List[str] = []

    @property
    def available(self) -> bool:
        return self._command is not None

    def _pump(self) -> None:
        proc = self._proc
        if proc is None or proc.stdout is None:
            return
        for line in proc.stdout:
            self._lines.append(line)

    def __enter__(self) -> TegrastatsSampler:
        if self._command is None:
            return self
        try:
            self._proc = subprocess.Popen(
                self._command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
        except OSError as exc:
            logger.warning("tegrastats could not start (%s); no power figures", exc)
            self._command = None
            return self
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=3)
        if self._thread is not None:
            self._thread.join(timeout=3)

    def summary(self) -> Optional[Dict[str, Any]]:
        if self._command is None:
            return None
        return summarize_tegrastats(list(self._lines), self.interval_ms)
