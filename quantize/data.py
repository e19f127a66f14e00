"""The data a build carries: labelled validation tiers and the calibration set.

Validation travels in the bundle as uint8 frames with labels and FP32 reference logits, so the
device can re-measure accuracy loss with numpy alone. Both tiers are synthetic clips rendered at
indices far from any training or calibration index, so the same clip is never used twice:

* `standard`: clips like the demos' training data. A trained model saturates it (100%), so
  agreement there proves little;
* `hard`: what a trained model does not saturate: expressions at 0.3-0.75x the standard
  amplitude (micro-expressions down to 0.3 px), JPEG compression at quality 50-80 on every
  frame (`calib.synth.HARD`), and pseudo-subjects numbered beyond any recipe's training
  subjects. `calib.synth.Conditions` can add head motion and a light change between onset and
  apex too; the demo MMNet does not survive even 0.25 px of either (docs/quantization.md).

The calibration set is what INT8 quantization calibrates on.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from calib import synth
from calib.datasets import DATASETS
from calib.prepare import (
    GENERATOR_VERSION,
    CalibrationSet,
    default_cache_dir,
    load_npz_folder,
    prepare_samples,
    prepare_synthetic,
)
from edge.bundle import VALIDATION_FILES
from edge.errors import CalibrationError
from edge.metrics import classification_metrics
from edge.preprocess import prepare_inputs, stack_roles
from edge.spec import ModelSpec

__all__ = [
    "VALIDATION_START",
    "HARD_START",
    "HARD_AMPLITUDE_SCALE",
    "hard_amplitude",
    "HARD_SUBJECT_OFFSET",
    "TIERS",
    "ValidationSet",
    "synthetic_validation",
    "hard_validation",
    "validation_tiers",
    "bundle_tiers",
    "calibration_set",
]

TIERS = tuple(VALIDATION_FILES)
#: First synthetic sample index used for validation: training and calibration use low indices.
VALIDATION_START = 1_000_000
#: First index of the hard tier: disjoint from the standard tier's indices too.
HARD_START = 2_000_000
#: The hard tier's expression amplitude relative to the standard one: micro-expressions of
#: 1-2 px become 0.3-1.5 px (down to 0.3 px, below the demos' training range).
HARD_AMPLITUDE_SCALE = (0.3, 0.75)
#: The demo recipes train on pseudo-subjects s00..s15 (`calib.recipes`); the hard tier's start
#: at s16, so none of its identities was trained on.
HARD_SUBJECT_OFFSET = 16


def supports_synthetic(spec: ModelSpec) -> bool:
    return all(name in synth.EMOTION_AUS for name in spec.class_names)


def hard_amplitude(spec: ModelSpec) -> Tuple[float, float]:
    low, high = synth.amplitude_for(spec.preprocessing.frames)
    return round(low * HARD_AMPLITUDE_SCALE[0], 3), round(high * HARD_AMPLITUDE_SCALE[1], 3)


@dataclass
class ValidationSet:
    names: List[str]
    frames: np.ndarray  # uint8 [N, roles, H, W, 3] in the spec's role order
    labels: np.ndarray  # int64 [N], indices into the spec's class names
    source: str
    tier: str = "standard"

    @property
    def file(self) -> str:
        """Its file name in a bundle."""
        return VALIDATION_FILES[self.tier]

    @classmethod
    def load(cls, path: Path, *, tier: str = "standard", source: Optional[str] = None):
        """A set written by `save` (a bundle's validation file or a cache entry)."""
        with np.load(path, allow_pickle=False) as data:
            return cls(
                names=[str(n) for n in data["names"]],
                frames=data["frames"],
                labels=data["labels"].astype(np.int64),
                source=source or str(path),
                tier=tier,
            )

    def feeds(self, spec: ModelSpec) -> List[Dict[str, np.ndarray]]:
        roles = spec.preprocessing.frames
        return [prepare_inputs(spec, dict(zip(roles, pair))) for pair in self.frames]

    def save(self, path: Path, fp32_logits: Optional[np.ndarray] = None) -> None:
        arrays = {"names": np.asarray(self.names), "frames": self.frames, "labels": self.labels}
        if fp32_logits is not None:
            arrays["reference_logits"] = fp32_logits.astype(np.float32)
        np.savez_compressed(path, **arrays)

    def manifest_entry(
        self, spec: ModelSpec, fp32_logits: np.ndarray, executor: str
    ) -> Dict[str, Any]:
        metrics = classification_metrics(fp32_logits, self.labels, spec.class_names)
        return {
            "file": self.file,
            "tier": self.tier,
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
        amplitude_px=synth.amplitude_for(spec.preprocessing.frames),
    )  # fmt: skip
    lookup = {name: i for i, name in enumerate(spec.class_names)}
    return ValidationSet(
        names=[s.sample_id for s in samples],
        frames=np.stack([stack_roles(spec, s.frames) for s in samples]),
        labels=np.asarray([lookup[s.emotion] for s in samples], dtype=np.int64),
        source=f"synthetic (seed {seed}, samples {VALIDATION_START}..{VALIDATION_START + n - 1})",
    )


def hard_validation(
    spec: ModelSpec, n: int, *, seed: int, cache_dir: Optional[Path] = None
) -> Optional[ValidationSet]:
    """`n` labelled clips of the hard tier (see the module docstring), or None when the model's
    classes have no AU recipe. Rendered through the standard tier's path (calib.synth, then
    the runtime's preprocessing at inference), deterministic in `seed`, cached in `cache_dir`."""
    if n <= 0 or not supports_synthetic(spec):
        return None
    amplitude = hard_amplitude(spec)
    source = "synthetic hard tier (seed {}, samples {}..{}, amplitude {}-{} px, {})".format(
        seed, HARD_START, HARD_START + n - 1, *amplitude,
        ", ".join(f"{k} {v}" for k, v in synth.HARD.to_dict().items() if v),
    )  # fmt: skip
    key = hashlib.sha256(json.dumps({
        "tier": "hard", "version": GENERATOR_VERSION, "n": n, "seed": seed,
        "conditions": synth.HARD.to_dict(), "amplitude": list(amplitude),
        "subjects": HARD_SUBJECT_OFFSET, "classes": list(spec.class_names),
        "roles": list(spec.preprocessing.frames), "size": list(spec.preprocessing.storage_size),
        "depth_range_mm": spec.preprocessing.depth_range_mm,
    }, sort_keys=True).encode()).hexdigest()[:16]  # fmt: skip
    cached = Path(cache_dir) / f"validation-hard-{key}.npz" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            return ValidationSet.load(cached, tier="hard", source=source)
        except (OSError, ValueError, KeyError):
            cached.unlink()  # a damaged cache entry is rebuilt, not trusted
    samples = synth.generate(
        n, seed=seed, start=HARD_START, classes=spec.class_names,
        amplitude_px=amplitude, conditions=synth.HARD,
        subject_offset=HARD_SUBJECT_OFFSET, roles=spec.preprocessing.frames,
        depth_range_mm=spec.preprocessing.depth_range_mm,
    )  # fmt: skip
    lookup = {name: i for i, name in enumerate(spec.class_names)}
    hard = ValidationSet(
        names=[s.sample_id for s in samples],
        frames=np.stack([stack_roles(spec, s.frames) for s in samples]),
        labels=np.asarray([lookup[s.emotion] for s in samples], dtype=np.int64),
        source=source,
        tier="hard",
    )
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.stem + ".partial.npz")
        hard.save(partial)
        os.replace(partial, cached)
    return hard


def bundle_tiers(root: Path) -> Dict[str, ValidationSet]:
    """The validation tiers a bundle at `root` carries, by tier name (what the host benchmarks
    judge every model on)."""
    return {
        tier: ValidationSet.load(root / file, tier=tier)
        for tier, file in VALIDATION_FILES.items()
        if (root / file).is_file()
    }


def validation_tiers(
    spec: ModelSpec,
    *,
    standard: int = 40,
    hard: int = 300,
    seed: int = 0,
    cache_dir: Optional[Path] = None,
) -> Dict[str, ValidationSet]:
    """tier name -> labelled ValidationSet (`standard` and `hard`); a tier of 0 samples, or a
    model whose classes synthetic data cannot imitate, is left out."""
    tiers = {
        "standard": synthetic_validation(spec, standard, seed=seed),
        "hard": hard_validation(
            spec, hard, seed=seed,
            cache_dir=cache_dir if cache_dir is not None else default_cache_dir(),
        ),
    }  # fmt: skip
    return {name: tier for name, tier in tiers.items() if tier is not None}


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
