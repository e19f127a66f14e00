"""Native (C++/CUDA) parts of mer-edge, built separately with CMake and loaded with ctypes.

`edge.native.preproc` is the Python side of the edge_preproc library; importing it needs only
numpy, and without the library everything falls back to OpenCV.
"""

from __future__ import annotations

from edge.native.preproc import (
    NativePreprocessor,
    OpenCVPreprocessor,
    make_preprocessor,
    opencv_interp,
)

__all__ = ["NativePreprocessor", "OpenCVPreprocessor", "make_preprocessor", "opencv_interp"]
