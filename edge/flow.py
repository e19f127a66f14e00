"""Optical flow and optical strain between the registered onset and apex: the `flow:*` inputs.

Much of the micro-expression field (STSTNet, OFF-ApexNet, HTNet) feeds networks the horizontal
and vertical flow u, v and the optical strain between onset and apex instead of the frames.
Calibration, validation and the device runtime all reach this module through
`edge.preprocess.prepare_inputs`, so INT8 is calibrated on exactly the flow the device computes.

Pipeline, as `Preprocessing.flow` (`edge.spec.FlowSettings`) declares it:

1. onset and apex (registered crops, HxWx3 uint8) are resized to `flow.size` (area filter when
   shrinking) and turned grey;
2. a flow method from the registry gives u, v in pixels at `flow.size`;
3. optical strain is computed from the flow's spatial derivatives at `flow.size`;
4. u, v and strain are resampled to the input size (area filter when shrinking), then
   u, v * `scale` clipped to [-clip, clip] and strain * `strain_scale` clipped to
   [0, strain_clip] (a clip of 0 means none).

Methods are plain functions `(onset_grey, apex_grey) -> HxWx2 float32` registered by name:
`dis` (OpenCV DIS, medium preset; `dis-fast` and `dis-ultrafast` for its faster presets),
`farneback` (OpenCV Farneback) and `tvl1` (OpenCV-contrib's
Dual TV-L1, when `cv2.optflow` exists). On Jetson Orin the hardware optical-flow accelerator
(OFA) is reachable through NVIDIA VPI; it would plug in as one more function, registered with
`register_method("vpi-ofa", fn)`, where `fn` wraps both grey frames as `vpi.asimage`, calls
`vpi.optflow_dense(onset, apex, backend=vpi.Backend.OFA)` and converts VPI's S10.5 fixed-point
motion vectors (at the OFA's grid size) to float pixels at the input size. A model would then
name `method: vpi-ofa` in its spec; calibration on the host must use the same method, so the
host needs a bit-compatible fallback, or calibration data prepared on the device.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from edge._lazy import require
from edge.errors import EdgeBuildError
from edge.preprocess import resize_frame
from edge.spec import FLOW_IMAGE, FLOW_STRAIN, FLOW_U, FLOW_V, FlowSettings

__all__ = [
    "FlowMethod",
    "FlowFields",
    "register_method",
    "methods",
    "get_method",
    "grey",
    "dense_flow",
    "optical_strain",
    "flow_fields",
    "flow_tensor",
]

#: (onset grey HxW uint8, apex grey HxW uint8) -> HxWx2 float32 flow (u, v) in pixels.
FlowMethod = Callable[[np.ndarray, np.ndarray], np.ndarray]

_METHODS: Dict[str, FlowMethod] = {}
_LOCAL = threading.local()  # OpenCV algorithm objects are not safe to share between threads


def register_method(name: str, method: FlowMethod) -> None:
    """Make `method` available to specs as `flow.method: <name>` (replaces a same-named one)."""
    if not name:
        raise EdgeBuildError("a flow method needs a name")
    _METHODS[name] = method


def methods() -> Tuple[str, ...]:
    """Registered method names (a method may still fail for want of an optional package)."""
    return tuple(sorted(_METHODS))


def get_method(name: str) -> FlowMethod:
    try:
        return _METHODS[name]
    except KeyError:
        raise EdgeBuildError(
            f"unknown optical-flow method {name!r} (flow.method); known: {', '.join(methods())}"
        ) from None


def _dis_preset(preset: str) -> FlowMethod:
    """OpenCV DIS with one of its presets (ULTRAFAST, FAST, MEDIUM), one instance per thread."""

    def dis(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
        cv2 = require("cv2", purpose="optical flow")
        instances = _LOCAL.__dict__.setdefault("dis", {})
        if preset not in instances:
            code = getattr(cv2, "DISOPTICAL_FLOW_PRESET_" + preset)
            instances[preset] = cv2.DISOpticalFlow_create(code)
        return instances[preset].calc(onset, apex, None)

    return dis


def _farneback(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    cv2 = require("cv2", purpose="optical flow")
    # OpenCV's documented example parameters: 3 levels, pyramid scale 0.5, window 15.
    return cv2.calcOpticalFlowFarneback(onset, apex, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def _tvl1(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    cv2 = require("cv2", purpose="optical flow")
    optflow = getattr(cv2, "optflow", None)
    if optflow is None or not hasattr(optflow, "DualTVL1OpticalFlow_create"):
        raise EdgeBuildError(
            "flow.method 'tvl1' needs OpenCV's contrib modules (cv2.optflow): "
            "pip install opencv-contrib-python-headless (instead of opencv-python-headless), "
            "or choose 'dis' or 'farneback'"
        )
    tvl1 = getattr(_LOCAL, "tvl1", None)
    if tvl1 is None:
        tvl1 = _LOCAL.tvl1 = optflow.DualTVL1OpticalFlow_create()
    return tvl1.calc(onset, apex, None)


register_method("dis", _dis_preset("MEDIUM"))
register_method("dis-fast", _dis_preset("FAST"))
register_method("dis-ultrafast", _dis_preset("ULTRAFAST"))
register_method("farneback", _farneback)
register_method("tvl1", _tvl1)


def grey(frame: np.ndarray, color: str = "RGB") -> np.ndarray:
    """HxWx3 uint8 in `color` order (or HxW already grey) -> HxW uint8 luma."""
    if frame.ndim == 2:
        return np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise EdgeBuildError(f"optical flow needs HxWx3 or HxW frames, got shape {frame.shape}")
    cv2 = require("cv2", purpose="optical flow")
    code = cv2.COLOR_RGB2GRAY if color == "RGB" else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), code)


def dense_flow(onset: np.ndarray, apex: np.ndarray, method: str) -> np.ndarray:
    """HxWx2 float32 (u, v) in pixels from grey `onset` to grey `apex` of the same size."""
    if onset.shape != apex.shape or onset.ndim != 2:
        raise EdgeBuildError(
            f"optical flow needs two grey frames of one size, got {onset.shape} and {apex.shape}"
        )
    flow = np.asarray(get_method(method)(onset, apex), dtype=np.float32)
    if flow.shape != onset.shape + (2,):
        raise EdgeBuildError(
            f"flow method {method!r} returned shape {flow.shape}, expected {onset.shape + (2,)}"
        )
    return flow


def optical_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Optical strain magnitude sqrt(ux^2 + vy^2 + 0.5 (uy + vx)^2) per pixel (float32).

    The definition STSTNet and OFF-ApexNet use (the norm of the symmetric strain tensor, whose
    off-diagonal terms are 0.5 (uy + vx)), with central differences inside the image and one-sided
    ones at its border (`np.gradient`). Hand-written because it is a three-line formula that no
    library offers.
    """
    uy, ux = np.gradient(np.asarray(u, dtype=np.float32))
    vy, vx = np.gradient(np.asarray(v, dtype=np.float32))
    shear = uy + vx
    return np.sqrt(ux * ux + vy * vy + 0.5 * shear * shear).astype(np.float32)


@dataclass(frozen=True)
class FlowFields:
    """u, v and strain (each HxW float32 at the input size), scaled and clipped."""

    u: np.ndarray
    v: np.ndarray
    strain: np.ndarray


def _scale_clip(field: np.ndarray, scale: float, low: Optional[float], high: float) -> np.ndarray:
    out = field * np.float32(scale)
    if high > 0:
        np.clip(out, -high if low is None else low, high, out=out)
    return out


def flow_fields(
    onset: np.ndarray,
    apex: np.ndarray,
    settings: FlowSettings,
    size: Tuple[int, int],
    *,
    color: str = "RGB",
) -> FlowFields:
    """The `flow:*` fields from one registered onset/apex pair, as `settings` declare them.

    Fields are resampled with `resize_frame` (area filter when shrinking), values unchanged:
    u, v stay in pixels at `settings.size`."""
    grey_onset = grey(resize_frame(np.asarray(onset), settings.size), color)
    grey_apex = grey(resize_frame(np.asarray(apex), settings.size), color)
    flow = dense_flow(grey_onset, grey_apex, settings.method)
    u, v = np.ascontiguousarray(flow[:, :, 0]), np.ascontiguousarray(flow[:, :, 1])
    strain = optical_strain(u, v)
    return FlowFields(
        u=_scale_clip(resize_frame(u, size), settings.scale, None, settings.clip),
        v=_scale_clip(resize_frame(v, size), settings.scale, None, settings.clip),
        strain=_scale_clip(
            resize_frame(strain, size), settings.strain_scale, 0.0, settings.strain_clip
        ),
    )


def flow_tensor(source: str, fields: FlowFields) -> np.ndarray:
    """1xHxW for `flow:u`, `flow:v`, `flow:strain`; 3xHxW (u, v, strain) for `flow:image`."""
    if source == FLOW_IMAGE:
        return np.stack([fields.u, fields.v, fields.strain]).astype(np.float32)
    by_source: Mapping[str, np.ndarray] = {
        FLOW_U: fields.u,
        FLOW_V: fields.v,
        FLOW_STRAIN: fields.strain,
    }
    if source not in by_source:
        raise EdgeBuildError(
            f"unknown flow source {source!r}; known: {FLOW_U}, {FLOW_V}, {FLOW_STRAIN}, {FLOW_IMAGE}"
        )
    return np.ascontiguousarray(by_source[source], dtype=np.float32)[None]
