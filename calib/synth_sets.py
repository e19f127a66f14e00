"""Calibration and validation sets rendered by `calib.synth` (no dataset needed).

Synthetic micro-expressions go through the same `prepare_frame_sets` as dataset clips, so the
tensors differ from real ones only in where the faces came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from calib.sets import CalibrationSet, cache_key, cached, prepare_frame_sets
from edge.errors import CalibrationError
from edge.spec import ModelSpec

__all__ = ["GENERATOR_VERSION", "prepare_synthetic"]

#: Bump when calib.synth changes what it renders, so cached sets are rebuilt.
GENERATOR_VERSION = 2


def prepare_synthetic(
    spec: ModelSpec,
    n: int,
    *,
    seed: int = 0,
    start: int = 0,
    subjects: int = 8,
    cache_dir: Optional[Path] = None,
) -> CalibrationSet:
    """`n` synthetic expressions (calib.synth) for a model whose classes have AU recipes, at the
    amplitude its frame roles need (`synth.amplitude_for`)."""
    from calib import synth

    unknown = [c for c in spec.class_names if c not in synth.EMOTION_AUS]
    if unknown:
        raise CalibrationError(
            "synthetic data knows the classes {}; this model has {}".format(
                ", ".join(synth.CLASSES), ", ".join(spec.class_names)
            )
        )
    amplitude = synth.amplitude_for(spec.preprocessing.frames)
    key = cache_key({
        "source": "synthetic", "version": GENERATOR_VERSION, "n": n, "seed": seed,
        "start": start, "subjects": subjects, "classes": list(spec.class_names),
        "preprocessing": spec.preprocessing.to_dict(), "amplitude": list(amplitude),
    })  # fmt: skip

    def build() -> CalibrationSet:
        samples = synth.generate(
            n, seed=seed, start=start, subjects=subjects, classes=spec.class_names,
            roles=spec.preprocessing.frames, depth_range_mm=spec.preprocessing.depth_range_mm,
            amplitude_px=amplitude,
        )  # fmt: skip
        return prepare_frame_sets(
            spec,
            [s.frames for s in samples],
            sample_ids=[s.sample_id for s in samples],
            subjects=[s.subject for s in samples],
            labels=[s.emotion for s in samples],
            source=f"synthetic (seed {seed}, samples {start}..{start + n - 1})",
            key=key,
        )

    return cached(key, cache_dir, build)
