"""Build a TensorRT engine from a bundle on the device and record it in the manifest.

The engine and its timing cache are written next to the bundle's files (temporary name, then
rename), and the manifest is rewritten the same way, so an interrupted build leaves the old
manifest valid. The command line is `python3 -m edge.cli.engine`.
"""

from __future__ import annotations

import datetime
import logging
import os
import shlex
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

from edge._trtcompat import caps_from_module
from edge.bundle import Bundle, Manifest, file_entry, sha256_file
from edge.engine.adapter import apply_plan
from edge.engine.device import DeviceInfo
from edge.engine.key import EngineKey, engine_file, engine_key, timing_cache_file
from edge.engine.plan import BuildPlan, plan_build
from edge.errors import BundleError, IncompatibleEngineError

__all__ = [
    "device_command",
    "engine_from_bundle",
    "engine_for_device",
    "find_engine",
    "plan_for_bundle",
    "record_engine",
]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


def device_command(
    bundle_dir: PathLike,
    precision: str,
    *,
    workspace_mib: Optional[int] = None,
    dla_core: Optional[int] = None,
) -> str:
    """The exact command that builds this bundle's engine on the Jetson."""
    parts = [
        "python3",
        "-m",
        "edge.cli.engine",
        "--bundle",
        os.fspath(bundle_dir),
        "--precision",
        precision,
    ]
    if workspace_mib is not None:
        parts += ["--workspace-mib", str(workspace_mib)]
    if dla_core is not None:
        parts += ["--dla-core", str(dla_core)]
    return " ".join(shlex.quote(p) for p in parts)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("." + path.name + ".partial")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def record_engine(bundle: Bundle, entry: Dict[str, Any], files: Dict[str, bytes]) -> Dict[str, Any]:
    """Write `files` into the bundle and replace the manifest with one that lists them.

    An engine entry with the same file name (same key) is replaced; others are kept.
    """
    manifest = Manifest.from_dict(bundle.info.to_dict())
    for name, data in files.items():
        _write_atomic(bundle.root / name, data)
        manifest.files[name] = file_entry(bundle.root / name)
    manifest.add_engine(entry)
    manifest.save(bundle.root)
    return manifest.to_dict()


def plan_for_bundle(
    bundle: Bundle,
    caps: Any,
    precision: str,
    *,
    workspace_mib: Optional[int] = None,
    optimization_level: Optional[int] = None,
    dla_core: Optional[int] = None,
    timing_cache: bool = True,
) -> BuildPlan:
    return plan_build(
        caps,
        precision,
        bundle.info.target_tensorrt,
        models=sorted(bundle.info.models),
        workspace_mib=workspace_mib,
        optimization_level=optimization_level,
        dla_core=dla_core,
        timing_cache=timing_cache,
    )


def engine_from_bundle(
    bundle_dir: PathLike,
    precision: str,
    *,
    trt: Any,
    device: DeviceInfo,
    workspace_mib: Optional[int] = None,
    optimization_level: Optional[int] = None,
    dla_core: Optional[int] = None,
    timing_cache: bool = True,
) -> Dict[str, Any]:
    """Build the engine for `precision` into the bundle; returns the manifest's engine entry.

    Args:
        bundle_dir: a bundle made by edge-build (hashes are verified first).
        precision: fp32, fp16 or int8.
        trt: the imported `tensorrt` module.
        device: this device's identity (`probe_device()`), recorded in the engine key.
        workspace_mib, optimization_level, dla_core, timing_cache: see `plan_build`.

    Raises:
        EdgeBuildError: the bundle is damaged, the request is impossible on this TensorRT, or
            TensorRT failed to parse or build.
    """
    bundle = Bundle.load(bundle_dir)
    caps = caps_from_module(trt)
    plan = plan_for_bundle(
        bundle,
        caps,
        precision,
        workspace_mib=workspace_mib,
        optimization_level=optimization_level,
        dla_core=dla_core,
        timing_cache=timing_cache,
    )
    onnx_path = bundle.onnx_path(plan.onnx_model)
    key = engine_key(device, caps.version_text, precision)
    cache_name = timing_cache_file(key)
    cache_in = None
    if plan.timing_cache and cache_name in bundle.manifest["files"]:
        cache_in = bundle.path(cache_name).read_bytes()
    log.info("building %s engine with TensorRT %s: %s", precision, caps.version_text, plan)
    start = time.perf_counter()
    built = apply_plan(
        trt, plan, onnx_path.read_bytes(), origin=str(onnx_path), timing_cache=cache_in
    )
    seconds = round(time.perf_counter() - start, 3)
    name = engine_file(key)
    files = {name: built.plan}
    if built.timing_cache is not None:
        files[cache_name] = built.timing_cache
    entry = {
        "file": name,
        "precision": precision,
        "key": key.to_dict(),
        "onnx": {"file": onnx_path.name, "sha256": sha256_file(onnx_path)},
        "plan": plan.to_dict(),
        "timing_cache": cache_name if built.timing_cache is not None else None,
        "gpu_fallback_layers": built.gpu_fallback_layers,
        "built_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "build_s": seconds,
    }
    manifest = record_engine(bundle, entry, files)
    entry = dict(entry, sha256=manifest["files"][name]["sha256"], bytes=len(built.plan))
    return entry


def find_engine(
    manifest: Dict[str, Any], precision: str, current: EngineKey, *, bundle_dir: PathLike
) -> Dict[str, Any]:
    """The manifest's engine entry that fits `current`; raises naming both sides otherwise."""
    rebuild = device_command(bundle_dir, precision)
    entries = [e for e in manifest.get("engines") or [] if e.get("precision") == precision]
    if not entries:
        raise BundleError(
            f"{bundle_dir}: the bundle has no {precision} engine; build it on this device with: {rebuild}"
        )
    reasons = []
    for entry in entries:
        built = EngineKey.from_dict(entry["key"])
        problems = built.mismatches(current)
        if not problems:
            for field in ("compute_capability", "device_model", "l4t"):
                if getattr(built, field) is None or getattr(current, field) is None:
                    log.warning("%s: %s unknown on one side; not compared", entry["file"], field)
            return entry
        reasons.append(
            "{} was built for {} ({})".format(entry["file"], built.describe(), ", ".join(problems))
        )
    raise IncompatibleEngineError(
        "{}: no {} engine fits this device ({}): {}; rebuild it here with: {}".format(
            bundle_dir, precision, current.describe(), "; ".join(reasons), rebuild
        )
    )


def engine_for_device(
    bundle: Bundle, precision: str, *, trt: Any, device: DeviceInfo
) -> Dict[str, Any]:
    """The manifest's `precision` engine built for `device` with this `trt` module."""
    current = engine_key(device, caps_from_module(trt).version_text, precision)
    return find_engine(bundle.manifest, precision, current, bundle_dir=bundle.root)
