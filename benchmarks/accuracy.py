"""Inputs for measuring accuracy loss: FP32 decision stability under pixel noise, numpy only.

The metrics live in `edge.metrics` and the noise in `edge.noise` (the build's placement search
needs it too, and `quantize` does not import `benchmarks`); this module keeps the name that
benchmark scripts import.
"""

from __future__ import annotations

from edge.noise import noise_stability, with_pixel_noise

__all__ = ["with_pixel_noise", "noise_stability"]
