"""How stable a model's decisions are under input noise far below a camera's own, numpy only.

INT8 fidelity is judged against this floor: a model whose FP32 decisions flip under half a gray
level of noise cannot be expected to keep them under INT8 rounding either. Runs on the device
(edge-bench) as well as the host (model cards, the INT8 placement search, bench_quant).

Noise is pixel noise. For inputs that are normalised frames it can be added to the tensors
(`with_pixel_noise`); inputs computed from frames, such as optical flow, must get it on the
uint8 frames before they are computed (`with_frame_noise`), or the test measures nothing a
camera would do. `noisy_feeds` picks the right one for a spec.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from edge.preprocess import prepare_inputs
from edge.spec import ModelSpec

__all__ = ["with_pixel_noise", "with_frame_noise", "noisy_feeds", "noise_stability"]


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


def with_frame_noise(
    spec: ModelSpec, frames: np.ndarray, gray_levels: float, *, seed: int = 0
) -> List[Dict[str, np.ndarray]]:
    """The spec's feeds of `frames` (uint8 [N, roles, H, W, C] in the spec's role order) after
    Gaussian noise of `gray_levels` is added to every frame and rounded back to uint8, as a
    camera delivers it."""
    rng = np.random.default_rng(seed)
    frames = np.asarray(frames)
    noisy = np.rint(frames + rng.normal(0.0, gray_levels, frames.shape))
    noisy = np.clip(noisy, 0, 255).astype(np.uint8)
    roles = spec.preprocessing.frames
    return [prepare_inputs(spec, dict(zip(roles, sample))) for sample in noisy]


def noisy_feeds(
    spec: ModelSpec,
    feeds: Sequence[Mapping[str, np.ndarray]],
    frames: Optional[np.ndarray],
    gray_levels: float,
    *,
    seed: int = 0,
) -> List[Dict[str, np.ndarray]]:
    """`feeds` (prepared from `frames`) under pixel noise: on the frames for models whose inputs
    are computed from them (optical flow), on the normalised tensors otherwise."""
    if spec.preprocessing.reads_flow:
        if frames is None:
            raise ValueError(f"{spec.arch} reads optical flow: pixel noise needs its frames")
        return with_frame_noise(spec, frames, gray_levels, seed=seed)
    return with_pixel_noise(feeds, spec.preprocessing.std, gray_levels, seed=seed)


def noise_stability(
    infer: Callable[[Dict[str, np.ndarray]], np.ndarray],
    feeds: Sequence[Mapping[str, np.ndarray]],
    std: Sequence[float],
    gray_levels: float,
    *,
    seed: int = 0,
    reference: Optional[np.ndarray] = None,
    spec: Optional[ModelSpec] = None,
    frames: Optional[np.ndarray] = None,
) -> float:
    """Share of top-1 decisions `infer` (feed -> logits [batch, classes]) keeps when the frames
    get `gray_levels` of noise; `reference` (the clean logits) saves one clean pass. With
    `spec`, the noise is `noisy_feeds`' (on `frames`, the clips of `feeds`, for flow models)."""
    if not feeds:
        raise ValueError("noise_stability: no feeds")
    if reference is None:
        reference = np.concatenate([np.asarray(infer(dict(f))) for f in feeds])
    if spec is not None:
        noisy = noisy_feeds(spec, feeds, frames, gray_levels, seed=seed)
    else:
        noisy = with_pixel_noise(feeds, std, gray_levels, seed=seed)
    logits = np.concatenate([np.asarray(infer(f)) for f in noisy])
    if logits.shape != np.shape(reference):
        raise ValueError(
            f"noise_stability: reference logits {np.shape(reference)} but noisy {logits.shape}"
        )
    return float(np.mean(np.argmax(logits, axis=1) == np.argmax(reference, axis=1)))
