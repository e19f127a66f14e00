"""Inputs for measuring accuracy loss: FP32 decision stability under pixel noise, numpy only.

The metrics themselves (accuracy, UAR, UF1, agreement, logit errors, the comparison against the
FP32 reference) live in `edge.metrics`, so the build, the benchmarks and the device share one
definition.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence

import numpy as np

__all__ = ["with_pixel_noise"]


def with_pixel_noise(
    feeds: Sequence[Mapping[str, np.ndarray]],
    std: Sequence[float],
    gray_levels: float,
    *,
    seed: int = 0,
) -> List[Dict[str, np.ndarray]]:
    """`feeds` with Gaussian noise of `gray_levels` (of 255) added to every image input.

    Image inputs are the NCHW/NCTHW tensors with one channel per entry of `std`, the
    normalisation's per-channel std, so the noise is in pixel units before normalising. Used to
    measure how stable FP32 decisions are under noise far below a camera's own: a model whose
    decisions flip there cannot be expected to keep them under INT8 rounding either.
    """
    rng = np.random.default_rng(seed)
    scale = np.asarray(std, np.float64)
    noisy = []
    for feed in feeds:
        out = {}
        for name, value in feed.items():
            value = np.asarray(value)
            if value.dtype.kind == "f" and value.ndim >= 4 and value.shape[1] == len(scale):
                sigma = (gray_levels / 255.0 / scale).reshape((1, -1) + (1,) * (value.ndim - 2))
                value = (value + rng.standard_normal(value.shape) * sigma).astype(value.dtype)
            out[name] = value
        noisy.append(out)
    return noisy
