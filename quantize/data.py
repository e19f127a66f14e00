"""The data a build carries: a labelled validation set and the calibration set.

The validation set travels in the bundle as uint8 onset/apex frames with labels and FP32
reference logits, so the device can re-measure accuracy loss with numpy alone. It comes from
synthetic clips rendered at indices far from any training or calibration index, so the same
clip is never used twice. The calibration set is what INT8 quantization calibrates on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from calib import synth
from calib.datasets import DATASETS
from calib.prepare import (
    CalibrationSet,
    default_cache_dir,
    load_npz_folder,
    prepare_samples,
    prepare_synthetic,
)
from edge.bundle import VALIDATION_FILE
from edge.errors import CalibrationError
from edge.metrics import classification_metrics
from edge.preprocess import prepare_inputs, stack_roles
from edge.spec import ModelSpec

__all__ = [
    "VALIDATION_START",
    "ValidationSet",
    "synthetic_validation",
    "calibration_set",
]

#: First synthetic sample index used for validation: training and calibration use low indices.
VALIDATION_START = 1_000_000


def supports_synthetic(spec: ModelSpec) -> bool:
    return all(name in synth.EMOTION_AUS for name in spec.class_names)


@dataclass
class ValidationSet:
    names: List[str]
    frames: np.ndarray  # uint8 [N, roles, H, W, 3] in the spec's role order
    labels: np.ndarray  # int64 [N], indices into the spec's class names
    source: str

    def feeds(self, spec: ModelSpec) -> List[Dict[str, np.ndarray]]:
        roles = spec.preprocessing.frames
        return [prepare_inputs(spec, dict(zip(roles, pair))) for pair in self.frames]

    def save(self, path: Path, fp32_logits: np.ndarray) -> None:
        np.savez_compressed(
            path,
            names=np.asarray(self.names),
            frames=self.frames,
            labels=self.labels,
            reference_logits=fp32_logits.astype(np.float32),
        )

    def manifest_entry(
        self, spec: ModelSpec, fp32_logits: np.ndarray, executor: str
    ) -> Dict[str, Any]:
        metrics = classification_metrics(fp32_logits, self.labels, spec.class_names)
        return {
            "file": VALIDATION_FILE,
            "samples": len(self.names),
            "source": self.source,
            "labels": True,
            "content": "frames uint8 [N, {} ({}), H, W, 3] RGB (depth as grey); labels; "
            "reference_logits from the FP32 ONNX on {}".format(
                len(spec.preprocessing.frames), ", ".join(spec.preprocessing.frames), executor
            ),
            "fp32_metrics": {k: metrics[k] for k in ("accuracy", "uar", "uf1")},
        }


def synthetic_validation(spec: ModelSpec, n: int, *, seed: int) -> Optional[ValidationSet]:
    """`n` labelled synthetic clips, or None when the model's classes have no AU recipe."""
    if n <= 0 or not supports_synthetic(spec):
        return None
    samples = synth.generate(
        n, seed=seed, start=VALIDATION_START, classes=spec.class_names,
        roles=spec.preprocessing.frames, depth_range_mm=spec.preprocessing.depth_range_mm,
    )  # fmt: skip
    lookup = {name: i for i, name in enumerate(spec.class_names)}
    return ValidationSet(
        names=[s.sample_id for s in samples],
        frames=np.stack([stack_roles(spec, s.frames) for s in samples]),
        labels=np.asarray([lookup[s.emotion] for s in samples], dtype=np.int64),
        source=f"synthetic (seed {seed}, samples {VALIDATION_START}..{VALIDATION_START + n - 1})",
    )


def _fix_summary(samples, enabled: bool) -> str:
    outcomes = getattr(samples, "fix_outcomes", ())
    applied = sum(1 for o in outcomes if o.status == "applied")
    if not enabled:
        return f"annotation fixes off ({len(outcomes)} known)"
    return f"{applied} annotation fixes applied (calib.fixes)"


def calibration_set(
    spec: ModelSpec,
    source: str,
    n: int,
    *,
    seed: int,
    required: bool,
    alignment: str = "precropped",
    cache_dir: Optional[Path] = None,
    annotation_fixes: bool = True,
) -> Optional[CalibrationSet]:
    """`source` is `synthetic`, `DATASET:ROOT` (casme2, samm, mmew, casme3, generic) or a folder
    of preprocessed `.npz` tensors; n=0 means none.

    When the precision does not consume calibration data (`required` False), a model whose
    classes synthetic data cannot imitate simply gets none instead of an error.
    """
    if n <= 0:
        return None
    if source == "synthetic":
        if not supports_synthetic(spec) and not required:
            return None
        if not supports_synthetic(spec):
            raise CalibrationError(
                "synthetic calibration data has the classes {}; this model has {}: pass "
                "--calib-data with a folder of .npz tensors".format(
                    ", ".join(synth.CLASSES), ", ".join(spec.class_names)
                )
            )
        cache = cache_dir if cache_dir is not None else default_cache_dir()
        return prepare_synthetic(spec, n, seed=seed, cache_dir=cache)
    name, sep, root = source.partition(":")
    if sep and name in DATASETS:
        if name == "generic":
            samples = DATASETS[name](Path(root))
            described = source
        else:  # the readers of licensed datasets carry annotation fixes (calib.fixes)
            samples = DATASETS[name](Path(root), fixes=annotation_fixes)
            described = f"{source}, {_fix_summary(samples, annotation_fixes)}"
        return prepare_samples(
            spec, samples, n, seed=seed, alignment=alignment, source=described,
            cache_dir=cache_dir if cache_dir is not None else default_cache_dir(),
        )  # fmt: skip
    prepared = load_npz_folder(Path(source), spec)
    if len(prepared) > n:
        rng = np.random.default_rng(seed)
        prepared = prepared.subset(sorted(rng.choice(len(prepared), n, replace=False).tolist()))
    return prepared
