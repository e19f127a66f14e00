"""Frame -> model input in one call: the native library (CUDA, or its CPU build) or OpenCV.

Both preprocessors take the aligner's 2x3 matrix (source pixels -> crop pixels, the
`cv2.warpAffine` convention of `edge.align`) and return the planar `[3, H, W]` tensor that
`edge.preprocess.normalize_frame` returns for the warped crop. The native library reproduces
OpenCV's bilinear warp bit for bit (`interp="fixed"` for OpenCV <= 4.10, `"float"` for >= 4.11),
so switching between them changes speed, not numbers.

The library is optional and loaded with ctypes: importing this module needs numpy only, and a
missing library is an ordinary fallback to OpenCV (`make_preprocessor("auto")`), never an
import error.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from edge._lazy import require
from edge.errors import EdgeBuildError, MissingDependencyError
from edge.preprocess import normalize_frame
from edge.spec import Preprocessing

__all__ = [
    "ENV_LIB",
    "LIB_NAMES",
    "ABI_VERSION",
    "COLORS",
    "MAX_BATCH",
    "NativePreprocessor",
    "OpenCVPreprocessor",
    "make_preprocessor",
    "library_candidates",
    "opencv_interp",
]

logger = logging.getLogger(__name__)

#: A library file, or a directory holding one, tried before the build directories.
ENV_LIB = "MER_EDGE_NATIVE_LIB"
#: Library file per backend, as CMakeLists.txt names them.
LIB_NAMES = {"cuda": "libedge_preproc.so", "cpu": "libedge_preproc_cpu.so"}
#: Must equal EDGE_PREPROC_ABI_VERSION in edge/native/include/edge_preproc.h.
ABI_VERSION = 2
#: Must equal EDGE_PP_MAX_BATCH: longer batches are split into calls of this many frames.
MAX_BATCH = 32
COLORS = {"GRAY": 0, "RGB": 1, "BGR": 2, "RGBA": 3, "BGRA": 4}
_CHANNELS = {"GRAY": 1, "RGB": 3, "BGR": 3, "RGBA": 4, "BGRA": 4}
_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}
_BORDERS = {"replicate": 0, "constant": 1}
_INTERPS = {"fixed": 0, "float": 1}
_KINDS = ("auto", "native", "native-cpu", "opencv")
_REPO_BUILD = Path(__file__).resolve().parents[2] / "build" / "native"

Size = Tuple[int, int]
Triple = Sequence[float]


class _Image(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("width", ctypes.c_int32),
        ("height", ctypes.c_int32),
        ("color", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
        ("pitch", ctypes.c_size_t),
    ]


class _Params(ctypes.Structure):
    _fields_ = [
        ("matrix", ctypes.c_double * 6),
        ("out_width", ctypes.c_int32),
        ("out_height", ctypes.c_int32),
        ("color_out", ctypes.c_int32),
        ("dtype", ctypes.c_int32),
        ("border", ctypes.c_int32),
        ("interp", ctypes.c_int32),
        ("mean", ctypes.c_float * 3),
        ("std", ctypes.c_float * 3),
        ("scale", ctypes.c_float),
    ]


def opencv_interp(version: Optional[str] = None) -> str:
    """The interpolation mode that matches OpenCV `version` (default: the installed cv2).

    OpenCV 4.11 replaced warpAffine's 1/32-pixel fixed-point path with float32 kernels; without
    cv2 the host's calibration pipeline (OpenCV 5) is matched, so "float".
    """
    if version is None:
        try:
            version = require("cv2", purpose="matching OpenCV's warp").__version__
        except MissingDependencyError:
            return "float"
    match = re.match(r"(\d+)\.(\d+)", str(version))
    if not match:
        raise EdgeBuildError(f"cannot read the OpenCV version {version!r}")
    major, minor = int(match.group(1)), int(match.group(2))
    return "float" if (major, minor) >= (4, 11) else "fixed"


def library_candidates(backend: str) -> List[Path]:
    """Where the `backend` library is looked for, in order: $MER_EDGE_NATIVE_LIB (a file or a
    directory), the CMake build directory `build/native`, then next to this module."""
    name = LIB_NAMES[backend]
    found: List[Path] = []
    env = os.environ.get(ENV_LIB)
    if env:
        path = Path(env)
        found.append(path / name if path.is_dir() else path)
    found += [_REPO_BUILD / name, Path(__file__).resolve().parent / name]
    return found


def _load(backend: str, path: Optional[Union[str, Path]]) -> Tuple[ctypes.CDLL, Path]:
    if backend not in LIB_NAMES:
        raise EdgeBuildError(f"unknown native backend {backend!r}; use one of {sorted(LIB_NAMES)}")
    candidates = [Path(path)] if path is not None else library_candidates(backend)
    existing = [p for p in candidates if p.is_file()]
    if not existing:
        raise MissingDependencyError(
            "{} not found (looked in {}); build it with: cmake -S . -B build/native && cmake --build build/native".format(
                LIB_NAMES[backend], ", ".join(str(p) for p in candidates)
            )
        )
    lib_path = existing[0]
    try:
        lib = ctypes.CDLL(str(lib_path))
    except OSError as exc:
        raise MissingDependencyError(f"{lib_path}: cannot be loaded ({exc})") from exc
    _declare(lib)
    abi = lib.edge_preproc_abi_version()
    if abi != ABI_VERSION:
        raise EdgeBuildError(
            f"{lib_path}: ABI version {abi}, this module needs {ABI_VERSION}; rebuild the library"
        )
    actual = lib.edge_preproc_backend().decode()
    if actual != backend:
        raise EdgeBuildError(f"{lib_path}: is the {actual} build, not the {backend} one")
    return lib, lib_path


def _declare(lib: ctypes.CDLL) -> None:
    img, par, vp = ctypes.POINTER(_Image), ctypes.POINTER(_Params), ctypes.c_void_p
    table = {
        "edge_preproc_abi_version": ([], ctypes.c_int),
        "edge_preproc_backend": ([], ctypes.c_char_p),
        "edge_preproc_device_count": ([], ctypes.c_int),
        "edge_preproc_status_string": ([ctypes.c_int], ctypes.c_char_p),
        "edge_preproc_last_error": ([], ctypes.c_char_p),
        "edge_preproc_validate": ([img, img, par], ctypes.c_int),
        "edge_preproc_create": ([ctypes.POINTER(vp)], ctypes.c_int),
        "edge_preproc_destroy": ([vp], None),
        "edge_preproc_warp_normalize": ([vp, img, par, vp], ctypes.c_int),
        "edge_preproc_warp_normalize_diff": ([vp, img, img, par, vp], ctypes.c_int),
        "edge_preproc_warp_normalize_batch": ([vp, img, ctypes.c_int, par, vp], ctypes.c_int),
        "edge_preproc_warp_normalize_device": ([img, par, vp, vp], ctypes.c_int),
        "edge_preproc_warp_normalize_diff_device": ([img, img, par, vp, vp], ctypes.c_int),
        "edge_preproc_warp_normalize_batch_device": (
            [img, ctypes.c_int, par, vp, vp],
            ctypes.c_int,
        ),
        "edge_preproc_device_alloc": ([ctypes.c_size_t, ctypes.POINTER(vp)], ctypes.c_int),
        "edge_preproc_device_free": ([vp], ctypes.c_int),
        "edge_preproc_copy_to_device": ([vp, vp, ctypes.c_size_t], ctypes.c_int),
        "edge_preproc_copy_to_host": ([vp, vp, ctypes.c_size_t], ctypes.c_int),
        "edge_preproc_synchronize": ([], ctypes.c_int),
    }
    for name, (args, result) in table.items():
        func = getattr(lib, name)
        func.argtypes = args
        func.restype = result


def _color(name: str, *, output: bool = False) -> str:
    key = str(name).upper()
    allowed = ("RGB", "BGR") if output else tuple(COLORS)
    if key not in allowed:
        what = "output" if output else "input"
        raise EdgeBuildError(f"{what} colour order must be one of {list(allowed)}, not {name!r}")
    return key


def _frame(frame: np.ndarray, color_in: str) -> np.ndarray:
    """Check a uint8 HxW(xC) frame against its colour order; returns it as HxWxC."""
    channels = _CHANNELS[color_in]
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise EdgeBuildError(
            f"frames must be uint8 numpy arrays, got {getattr(frame, 'dtype', type(frame))}"
        )
    if frame.ndim == 2 and channels == 1:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] != channels:
        raise EdgeBuildError(
            f"a {color_in} frame must be HxWx{channels}, got shape {tuple(frame.shape)}"
        )
    return frame


def _batch(frames: Sequence[np.ndarray]) -> List[np.ndarray]:
    frames = list(frames)
    if not frames:
        raise EdgeBuildError("a batch needs at least one frame")
    shapes = {tuple(f.shape) for f in frames}
    if len(shapes) > 1:
        raise EdgeBuildError(f"the frames of a batch differ in shape: {sorted(shapes)}")
    return frames


def _matrix(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 3):
        raise EdgeBuildError(f"the warp matrix must be 2x3, got shape {m.shape}")
    return m


def _out_dtype(dtype) -> np.dtype:
    out = np.dtype(dtype)
    if out not in _DTYPES:
        raise EdgeBuildError(f"output dtype must be float32 or float16, not {out}")
    return out


class OpenCVPreprocessor:
    """The runtime's CPU path: cv2.warpAffine (INTER_LINEAR), colour order, normalize_frame."""

    kind = "opencv"

    def warp(
        self, frame: np.ndarray, matrix: np.ndarray, size: Size, color_in: str, border: str
    ) -> np.ndarray:
        """Warped uint8 crop in `color_in` order (what `edge.align`'s warp_face returns)."""
        cv2 = require("cv2", purpose="warping frames")
        if border not in _BORDERS:
            raise EdgeBuildError(f"border must be one of {sorted(_BORDERS)}, not {border!r}")
        mode = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
        height, width = int(size[0]), int(size[1])
        out = cv2.warpAffine(
            frame, _matrix(matrix), (width, height), flags=cv2.INTER_LINEAR, borderMode=mode
        )
        return out.reshape(height, width, -1)

    def _normalized(self, frame, matrix, size, mean, std, scale, color_in, color_out, border):
        color_in, color_out = _color(color_in), _color(color_out, output=True)
        crop = self.warp(_frame(frame, color_in), matrix, size, color_in, border)
        if color_in == "GRAY":
            crop = np.repeat(crop, 3, axis=2)
        else:
            crop = crop[:, :, :3]
            if color_in[:3] != color_out:
                crop = crop[:, :, ::-1]
        prep = Preprocessing(
            size=(int(size[0]), int(size[1])),
            color=color_out,
            scale=float(scale),
            mean=tuple(float(v) for v in mean),  # type: ignore[arg-type]
            std=tuple(float(v) for v in std),  # type: ignore[arg-type]
        )
        return normalize_frame(np.ascontiguousarray(crop), prep)

    def warp_normalize(
        self,
        frame: np.ndarray,
        matrix: np.ndarray,
        size: Size,
        mean: Triple,
        std: Triple,
        scale: float,
        color_in: str,
        color_out: str = "RGB",
        dtype=np.float32,
        border: str = "replicate",
    ) -> np.ndarray:
        """`[3, H, W]` model input for one frame; `size` is (height, width)."""
        out = self._normalized(frame, matrix, size, mean, std, scale, color_in, color_out, border)
        return out.astype(_out_dtype(dtype), copy=False)

    def warp_normalize_batch(
        self,
        frames: Sequence[np.ndarray],
        matrix: np.ndarray,
        size: Size,
        mean: Triple,
        std: Triple,
        scale: float,
        color_in: str,
        color_out: str = "RGB",
        dtype=np.float32,
        border: str = "replicate",
    ) -> np.ndarray:
        """`[N, 3, H, W]`: every frame warped with the same matrix (an event's onset and apex)."""
        args = (matrix, size, mean, std, scale, color_in, color_out, dtype, border)
        return np.stack([self.warp_normalize(f, *args) for f in _batch(frames)])

    def warp_normalize_diff(
        self,
        onset: np.ndarray,
        apex: np.ndarray,
        matrix: np.ndarray,
        size: Size,
        mean: Triple,
        std: Triple,
        scale: float,
        color_in: str,
        color_out: str = "RGB",
        dtype=np.float32,
        border: str = "replicate",
    ) -> np.ndarray:
        """normalise(apex) - normalise(onset), both warped with the same matrix."""
        if onset.shape != apex.shape:
            raise EdgeBuildError(f"onset {onset.shape} and apex {apex.shape} differ in shape")
        args = (matrix, size, mean, std, scale, color_in, color_out, border)
        first = self._normalized(onset, *args)
        second = self._normalized(apex, *args)
        return np.subtract(second, first, dtype=np.float32).astype(_out_dtype(dtype), copy=False)


class NativePreprocessor:
    """The edge_preproc library through ctypes (`backend` "cuda", or "cpu" for its CPU build).

    Args:
        backend: which build to load.
        path: the library file; default: `library_candidates(backend)`.
        interp: "fixed" (OpenCV <= 4.10) or "float" (>= 4.11); default: match the installed cv2.

    Raises:
        MissingDependencyError: the library is not there or does not load.
        EdgeBuildError: wrong ABI or backend, or (cuda) no usable GPU.
    """

    def __init__(
        self,
        backend: str = "cuda",
        *,
        path: Optional[Union[str, Path]] = None,
        interp: Optional[str] = None,
    ) -> None:
        self.backend = backend
        self.kind = "native" if backend == "cuda" else "native-cpu"
        self.interp = opencv_interp() if interp is None else interp
        if self.interp not in _INTERPS:
            raise EdgeBuildError(f"interp must be 'fixed' or 'float', not {self.interp!r}")
        self._lib, self.path = _load(backend, path)
        self._ctx = ctypes.c_void_p()
        self._check(self._lib.edge_preproc_create(ctypes.byref(self._ctx)), "create")

    def device_count(self) -> int:
        return int(self._lib.edge_preproc_device_count())

    def close(self) -> None:
        """Free the library's context (its CUDA stream and device buffers)."""
        if self._ctx:
            self._lib.edge_preproc_destroy(self._ctx)
            self._ctx = ctypes.c_void_p()

    def __enter__(self) -> NativePreprocessor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_ctx", None):
            self.close()

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            text = self._lib.edge_preproc_status_string(status).decode()
            detail = self._lib.edge_preproc_last_error().decode()
            raise EdgeBuildError(f"{self.path}: {what}: {text}: {detail}")

    def _image(self, frame: np.ndarray, color_in: str) -> Tuple[_Image, np.ndarray]:
        frame = _frame(frame, color_in)
        rows_ok = frame.strides[0] >= frame.shape[1] * frame.shape[2]
        pixels_ok = frame.strides[1] == frame.shape[2] and (
            frame.shape[2] == 1 or frame.strides[2] == 1
        )
        if not (rows_ok and pixels_ok):
            frame = np.ascontiguousarray(frame)  # padded rows (pitch) are passed as they are
        image = _Image(
            frame.ctypes.data, frame.shape[1], frame.shape[0], COLORS[color_in], 0, frame.strides[0]
        )
        return image, frame

    def _params(self, matrix, size, mean, std, scale, color_out, dtype, border) -> _Params:
        if border not in _BORDERS:
            raise EdgeBuildError(f"border must be one of {sorted(_BORDERS)}, not {border!r}")
        if len(mean) != 3 or len(std) != 3:
            raise EdgeBuildError(f"mean and std need 3 values each, got {mean!r} and {std!r}")
        params = _Params()
        params.matrix[:] = [float(v) for v in _matrix(matrix).ravel()]
        params.out_height, params.out_width = int(size[0]), int(size[1])
        params.color_out = COLORS[_color(color_out, output=True)]
        params.dtype = _DTYPES[_out_dtype(dtype)]
        params.border = _BORDERS[border]
        params.interp = _INTERPS[self.interp]
        params.mean[:] = [float(v) for v in mean]
        params.std[:] = [float(v) for v in std]
        params.scale = float(scale)
        return params

    def warp_normalize(
        self,
        frame: np.ndarray,
        matrix: np.ndarray,
        size: Size,
        mean: Triple,
        std: Triple,
        scale: float,
        color_in: str,
        color_out: str = "RGB",
        dtype=np.float32,
        border: str = "replicate",
    ) -> np.ndarray:
        """`[3, H, W]` model input for one frame; same arguments as OpenCVPreprocessor."""
        color_in = _color(color_in)
        image, keep = self._image(frame, color_in)
        params = self._params(matrix, size, mean, std, scale, color_out, dtype, border)
        out = np.empty((3, params.out_height, params.out_width), dtype=_out_dtype(dtype))
        status = self._lib.edge_preproc_warp_normalize(
            self._ctx, ctypes.byref(image), ctypes.byref(params), out.ctypes.data
        )
        self._check(status, "warp_normalize")
        del keep
        return out

    def warp_normalize_diff(
        self,
        onset: np.ndarray,
        apex: np.ndarray,
        matrix: np.ndarray,
        size: Size,
        mean: Triple,
        std: Triple,
        scale: float,
        color_in: str,
        color_out: str = "RGB",
        dtype=np.float32,
        border: str = "replicate",
    ) -> np.ndarray:
        """normalise(apex) - normalise(onset) in one kernel."""
        color_in = _color(color_in)
        first, keep_a = self._image(onset, color_in)
        second, keep_b = self._image(apex, color_in)
        params = self._params(matrix, size, mean, std, scale, color_out, dtype, border)
        out = np.empty((3, params.out_height, params.out_width), dtype=_out_dtype(dtype))
        status = self._lib.edge_preproc_warp_normalize_diff(
            self._ctx,
            ctypes.byref(first),
            ctypes.byref(second),
            ctypes.byref(params),
            out.ctypes.data,
        )
        self._check(status, "warp_normalize_diff")
        del keep_a, keep_b
        return out

    def warp_normalize_batch(
        self,
        frames: Sequence[np.ndarray],
        matrix: np.ndarray,
        size: Size,
        mean: Triple,
        std: Triple,
        scale: float,
        color_in: str,
        color_out: str = "RGB",
        dtype=np.float32,
        border: str = "replicate",
    ) -> np.ndarray:
        """`[N, 3, H, W]` for frames sharing one alignment, in one call per MAX_BATCH frames:
        with the CUDA build one staging pass, one launch and one synchronisation for an
        event's onset and apex instead of two of each."""
        color_in = _color(color_in)
        frames = _batch(frames)
        params = self._params(matrix, size, mean, std, scale, color_out, dtype, border)
        out = np.empty(
            (len(frames), 3, params.out_height, params.out_width), dtype=_out_dtype(dtype)
        )
        for start in range(0, len(frames), MAX_BATCH):
            chunk = [self._image(f, color_in) for f in frames[start : start + MAX_BATCH]]
            images = (_Image * len(chunk))(*(image for image, _ in chunk))
            status = self._lib.edge_preproc_warp_normalize_batch(
                self._ctx, images, len(chunk), ctypes.byref(params), out[start].ctypes.data
            )
            self._check(status, "warp_normalize_batch")
            del chunk
        return out


Preprocessor = Union[NativePreprocessor, OpenCVPreprocessor]


def make_preprocessor(
    kind: str = "auto", *, path: Optional[Union[str, Path]] = None, interp: Optional[str] = None
) -> Preprocessor:
    """The preprocessor to use.

    "auto" takes the CUDA library when it loads and sees a GPU, else OpenCV (the reason is
    logged); "native" insists on the CUDA library; "native-cpu" loads the CPU build (tests,
    reference); "opencv" is the CPU path the runtime has always used.
    """
    if kind not in _KINDS:
        raise EdgeBuildError(f"preprocessor must be one of {list(_KINDS)}, not {kind!r}")
    if kind == "opencv":
        return OpenCVPreprocessor()
    if kind == "native-cpu":
        return NativePreprocessor("cpu", path=path, interp=interp)
    if kind == "native":
        return NativePreprocessor("cuda", path=path, interp=interp)
    try:
        native = NativePreprocessor("cuda", path=path, interp=interp)
    except EdgeBuildError as exc:
        logger.info("preprocessing with OpenCV: the CUDA library is unusable (%s)", exc)
        return OpenCVPreprocessor()
    return native
