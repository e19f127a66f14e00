"""How stable a model's decisions are under input noise far below a camera's own, numpy only.

INT8 fidelity is judged against this floor: a model whose FP32 decisions flip under half a gray
level of noise cannot be expected to keep them under INT8 rounding either. Runs on the device
(edge-bench) as well as the host (model cards, the INT8 placement search, bench_quant).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

__all__ = ["with_pixel_noise", "noise_stability"]


def with_pixel_noise(
    feeds: Sequence[Mapping[str, np.ndarray]],
    std: Sequence[float],
    gray_levels: float,
    *,
    seed: int = 0,
) -> List[Dict[str, np.ndarray]]:
    """`feeds` with Gaussian noise of `gray_levels` (of 255) added to every image input.

    Image inputs are the NCHW/NCTHW tensors with one channel per entry of `std`, the
    normalisation's per-channel std, so the noise is in pixel units before normalising.
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


def noise_stability(
    infer: Callable[[Dict[str, np.ndarray]], np.ndarray],
    feeds: Sequence[Mapping[str, np.ndarray]],
    std: Sequence[float],
    gray_levels: float,
    *,
    seed: int = 0,
    reference: Optional[np.ndarray] = None,
) -> float:
    """Share of top-1 decisions `infer` (feed -> logits [batch, classes]) keeps when the frames
    get `gray_levels` of noise; `reference` (the clean logits) saves one clean pass."""
    if not feeds:
        raise ValueError("noise_stability: no feeds")
    if reference is None:
        reference = np.concatenate([np.asarray(infer(dict(f))) for f in feeds])
    noisy = with_pixel_noise(feeds, std, gray_levels, seed=seed)
    logits = np.concatenate([np.asarray(infer(f)) for f in noisy])
    if logits.shape != np.shape(reference):
        raise ValueError(
            f"noise_stability: reference logits {np.shape(reference)} but noisy {logits.shape}"
        )
    return float(np.mean(np.argmax(logits, axis=1) == np.argmax(reference, axis=1)))
